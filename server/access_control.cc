// A handler's access control (access_control.h).
//
// How it works. The policy is an immutable AuthPolicy behind a
// shared_ptr. A call copies the pointer under the mutex (a reference count
// increment) and checks against that copy for its whole length; Reload parses
// the new file outside the mutex and swaps the pointer under it, so a call
// never waits for a parse, and a call in flight during a reload finishes
// under the policy it started with. The old policy is freed when its last
// call ends.
#include "server/access_control.h"

#include <utility>

#include "shared/monotonic_time.h"

namespace countersd {
namespace {
constexpr std::string_view kUnauthenticated = "unauthenticated";
}  // namespace

AccessControl::AccessControl(std::string path, std::shared_ptr<const AuthPolicy> initial)
    : path_(std::move(path)), policy_(std::move(initial)) {}

std::shared_ptr<const AuthPolicy> AccessControl::policy() const {
  absl::MutexLock lock(&mu_);
  return policy_;
}

absl::Status AccessControl::Reload() {
  if (!enabled()) return absl::OkStatus();
  // The supervisor logs the outcome at info level; a handler's success is a
  // debug line, its failure an error (the file may have changed between).
  absl::StatusOr<std::shared_ptr<const AuthPolicy>> loaded =
      ReloadAuthPolicy(path_, LogLevel::kDebug);
  if (!loaded.ok()) return loaded.status();
  absl::MutexLock lock(&mu_);
  policy_ = *std::move(loaded);
  return absl::OkStatus();
}

absl::Status AccessControl::Denied(std::string_view who, RpcMethod method, absl::Status status) {
  denials_.Report(who, RpcMethodName(method), status, MonotonicNow());
  return status;
}

absl::StatusOr<AccessControl::Admission> AccessControl::Admit(const CallIdentity& id,
                                                              RpcMethod method) {
  return Admit(policy(), id, method);
}

absl::StatusOr<AccessControl::Admission> AccessControl::Admit(
    std::shared_ptr<const AuthPolicy> policy, const CallIdentity& id, RpcMethod method) {
  Admission a;
  if (!enabled()) return a;
  a.policy = std::move(policy);
  a.principal = a.policy != nullptr ? a.policy->Lookup(id) : nullptr;
  if (absl::Status s = AuthorizeMethod(a.principal, id, method); !s.ok()) {
    return Denied(a.principal != nullptr ? std::string_view(a.principal->name) : kUnauthenticated,
                  method, std::move(s));
  }
  return a;
}

absl::Status AccessControl::CheckKey(const Admission& a, RpcMethod method, std::string_view key,
                                     std::string_view what) {
  if (a.principal == nullptr) return absl::OkStatus();
  if (absl::Status s = AuthorizeKey(*a.principal, key, what); !s.ok()) {
    return Denied(a.principal->name, method, std::move(s));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> AccessControl::ListRanges(const Admission& a,
                                                                   std::string_view prefix) {
  if (a.principal == nullptr) return std::vector<std::string>{std::string(prefix)};
  absl::StatusOr<std::vector<std::string>> ranges = countersd::ListRanges(*a.principal, prefix);
  if (!ranges.ok()) return Denied(a.principal->name, RpcMethod::kList, ranges.status());
  return ranges;
}

}  // namespace countersd
