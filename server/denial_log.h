// The log line of a refused call: at most one a second per principal, so a
// client retrying a refused call in a loop cannot flood the log, and never
// the token (a principal is named as auth_policy.h's Principal::name does).
#ifndef COUNTERSD_SERVER_DENIAL_LOG_H_
#define COUNTERSD_SERVER_DENIAL_LOG_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "shared/log_rate_limit.h"

namespace countersd {

class DenialLog {
 public:
  explicit DenialLog(absl::Duration interval = absl::Seconds(1)) : limit_(interval) {}

  // Logs (warning) that `who`'s call of `method` was refused with `status`
  // (its code and message), unless a line for `who` was logged less than
  // the interval before `now`; the next line for `who` then says how many
  // were left out. `who` is a principal's name, or "unauthenticated" for
  // every call without a known principal (one bucket: unknown callers are
  // not told apart by anything they cannot choose freely). Returns whether
  // it logged. Thread-safe.
  bool Report(std::string_view who, std::string_view method, const absl::Status& status,
              absl::Time now);

 private:
  // One key per principal name seen (bounded by the auth files loaded).
  LogRateLimit limit_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_DENIAL_LOG_H_
