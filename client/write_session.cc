#include "client/write_session.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/cancellation.h"
#include "shared/limits.h"
#include "shared/monotonic_time.h"

namespace countersd {
namespace {

// kSessionIdBytes from the kernel's CSPRNG. getrandom(2) of at most 256
// bytes does not return short once the pool is initialised, but may be
// interrupted before it; should it fail anyway (a seccomp filter, ENOSYS
// under an old kernel), absl's BitGen, which seeds itself from the OS's
// entropy, draws them instead: still unpredictable and unique per client.
std::string NewSessionId() {
  std::string id(kSessionIdBytes, '\0');
  size_t got = 0;
  while (got < id.size()) {
    const ssize_t n = getrandom(id.data() + got, id.size() - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;
    }
  }
  if (got < id.size()) {
    absl::BitGen gen;
    for (char& c : id) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  }
  return id;
}

constexpr absl::Duration kCancellationPoll = absl::Milliseconds(20);

}  // namespace

WriteSession::WriteSession() : session_id_(NewSessionId()) {}

bool WriteSession::FitsLocked(size_t response_values) const {
  if (issued_.empty()) return true;  // alone: whatever its size
  return next_sequence_ - issued_.front().sequence < kSessionWindow &&
         issued_values_ + response_values <= kWindowResponseValues;
}

absl::StatusOr<WriteSession::Ticket> WriteSession::Begin(size_t response_values,
                                                         absl::Time deadline,
                                                         const Cancellation* cancellation) {
  std::unique_lock lock(mu_);
  while (!FitsLocked(response_values)) {
    if (cancellation != nullptr && cancellation->cancelled()) {
      return absl::CancelledError("cancelled while waiting for the session's window; not sent");
    }
    const absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the deadline passed while waiting for the session's window (", in_flight_,
          " writes in flight, at most ", kSessionWindow, " sequences past the oldest); not sent"));
    }
    const absl::Duration wait = cancellation != nullptr ? std::min(left, kCancellationPoll) : left;
    window_cv_.wait_for(lock, absl::ToChronoNanoseconds(wait));
  }
  Ticket ticket{session_id_, next_sequence_++, generation_};
  issued_.push_back(Issued{ticket.sequence, response_values, false});
  issued_values_ += response_values;
  ++in_flight_;
  return ticket;
}

void WriteSession::End(const Ticket& ticket) {
  std::lock_guard lock(mu_);
  if (ticket.generation != generation_) return;  // of a session renewed since
  // Sequences are issued in order, so the ticket's entry is at its offset
  // from the front (the front is at most 63 sequences older).
  const uint64_t offset = ticket.sequence - issued_.front().sequence;
  Issued& entry = issued_[static_cast<size_t>(offset)];
  entry.ended = true;
  --in_flight_;
  if (offset != 0) return;  // the oldest in flight is still in flight
  while (!issued_.empty() && issued_.front().ended) {
    issued_values_ -= issued_.front().response_values;
    issued_.pop_front();
  }
  window_cv_.notify_all();
}

void WriteSession::Renew(const Ticket& ticket) {
  std::lock_guard lock(mu_);
  if (ticket.generation != generation_) return;  // renewed already; the ticket ended with it
  session_id_ = NewSessionId();
  ++generation_;
  next_sequence_ = 1;
  issued_.clear();
  issued_values_ = 0;
  in_flight_ = 0;
  window_cv_.notify_all();
}

std::string WriteSession::session_id() const {
  std::lock_guard lock(mu_);
  return session_id_;
}

size_t WriteSession::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

}  // namespace countersd
