// Rate-limited denial lines (denial_log.h), keyed by principal name
// (shared/log_rate_limit.h).
#include "server/denial_log.h"

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"
#include "shared/log.h"

namespace countersd {

bool DenialLog::Report(std::string_view who, std::string_view method, const absl::Status& status,
                       absl::Time now) {
  uint64_t suppressed = 0;
  if (!limit_.Admit(who, now, &suppressed)) return false;
  Log(LogLevel::kWarning, "call refused",
      {{"principal", who},
       {"method", method},
       {"code", absl::StatusCodeToString(status.code())},
       {"reason", std::string(status.message())},
       {"refusals_not_logged", suppressed}});
  return true;
}

}  // namespace countersd
