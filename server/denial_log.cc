// Rate-limited denial lines (denial_log.h): a map from principal name to the
// time of its last line and the count of lines left out since.
#include "server/denial_log.h"

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"
#include "shared/log.h"

namespace countersd {

bool DenialLog::Report(std::string_view who, std::string_view method, const absl::Status& status,
                       absl::Time now) {
  uint64_t suppressed;
  {
    absl::MutexLock lock(&mu_);
    auto it = buckets_.find(who);
    if (it == buckets_.end()) it = buckets_.emplace(std::string(who), Bucket{}).first;
    Bucket& b = it->second;
    if (now - b.last < interval_) {
      ++b.suppressed;
      return false;
    }
    b.last = now;
    suppressed = b.suppressed;
    b.suppressed = 0;
  }
  Log(LogLevel::kWarning, "call refused",
      {{"principal", who},
       {"method", method},
       {"code", absl::StatusCodeToString(status.code())},
       {"reason", std::string(status.message())},
       {"refusals_not_logged", suppressed}});
  return true;
}

}  // namespace countersd
