// A handler's access control: the auth policy in force (swapped whole on
// SIGHUP, never blocking a call for longer than a pointer copy), and the
// checks of one call against it, each refusal logged (denial_log.h).
// gRPC-free; call_identity.h says who a call is, request_authorization.h
// which keys a request touches.
#ifndef COUNTERSD_SERVER_ACCESS_CONTROL_H_
#define COUNTERSD_SERVER_ACCESS_CONTROL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/auth_policy.h"
#include "server/denial_log.h"

namespace countersd {

class AccessControl {
 public:
  // `path` empty (no --auth-file): every call is admitted. Else `initial` is
  // the policy the supervisor loaded from `path` (the last good one).
  AccessControl(std::string path, std::shared_ptr<const AuthPolicy> initial);

  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // Re-reads the file. A file that does not parse leaves the policy in
  // force as it is; either way the outcome is logged (the error at error
  // level, naming the line). Returns the outcome. Call from any thread.
  absl::Status Reload();

  // What an admitted call may do: its principal (null when access control
  // is off), and the policy it comes from, held for the call.
  struct Admission {
    std::shared_ptr<const AuthPolicy> policy;
    const Principal* principal = nullptr;
  };
  // Who the call is and whether that principal may call `method`:
  // UNAUTHENTICATED or PERMISSION_DENIED (auth_policy.h), logged.
  absl::StatusOr<Admission> Admit(const CallIdentity& id, RpcMethod method);
  // The same against `policy`, the one `id` was read for (policy()).
  absl::StatusOr<Admission> Admit(std::shared_ptr<const AuthPolicy> policy, const CallIdentity& id,
                                  RpcMethod method);
  // PERMISSION_DENIED (logged) unless `key` is in the admitted principal's
  // scope; `what` names the field ("key", "keys[3]").
  absl::Status CheckKey(const Admission& a, RpcMethod method, std::string_view key,
                        std::string_view what);
  // The ranges a List of `prefix` covers (auth_policy.h, ListRanges); {prefix}
  // when access control is off. PERMISSION_DENIED logged.
  absl::StatusOr<std::vector<std::string>> ListRanges(const Admission& a, std::string_view prefix);

  std::shared_ptr<const AuthPolicy> policy() const;

 private:
  absl::Status Denied(std::string_view who, RpcMethod method, absl::Status status);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const AuthPolicy> policy_ ABSL_GUARDED_BY(mu_);
  DenialLog denials_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_ACCESS_CONTROL_H_
