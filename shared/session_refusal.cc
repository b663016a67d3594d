#include "shared/session_refusal.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "shared/limits.h"

namespace countersd {
namespace {

constexpr absl::string_view kUnknownSession = "unknown session: ";
constexpr absl::string_view kForgottenSequence = "older than the daemon remembers: ";

}  // namespace

absl::Status UnknownSessionError(uint64_t sequence) {
  return absl::FailedPreconditionError(absl::StrCat(
      kUnknownSession, "the daemon does not remember this session (forgotten after --session-ttl "
                       "idle, or its place taken under --sessions-max), and sequence ",
      sequence, " is above ", kSessionWindow,
      ", so it cannot start one; the write was not applied. Start a new session"));
}

bool IsUnknownSessionError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         absl::StartsWith(status.message(), kUnknownSession);
}

absl::Status ForgottenSequenceError(uint64_t sequence, uint64_t highest) {
  return absl::FailedPreconditionError(absl::StrCat(
      kForgottenSequence, "sequence ", sequence, " of this session (its highest applied is ",
      highest, "; the window holds the last ", kSessionWindow, " and ", kSessionResponseValues,
      " response values); it may have been applied before, and was not applied now"));
}

bool IsForgottenSequenceError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         absl::StartsWith(status.message(), kForgottenSequence);
}

}  // namespace countersd
