#include "server/durability_watch.h"

#include "shared/durability_lag.h"
#include "shared/log.h"

namespace countersd {

DurabilityWatch::DurabilityWatch(CounterTable* table, absl::Duration lag_limit,
                                 absl::Duration interval)
    : table_(table), lag_limit_(lag_limit), interval_(interval) {}

void DurabilityWatch::Poll(absl::Time now) {
  const DurabilityLag lag = ReadDurabilityLag(*table_, lag_limit_);
  if (lag.lagging) {
    if (now >= next_log_) {
      next_log_ = now + interval_;
      Log(LogLevel::kError,
          "SNAPSHOTS ARE NOT BEING WRITTEN: changes are in no durable snapshot; a host crash or "
          "power loss now loses them (health countersd.durability: NOT_SERVING)",
          {{"oldest_undurable_change_age", absl::FormatDuration(lag.oldest_age)},
           {"durability_lag_limit", absl::FormatDuration(lag_limit_)},
           {"consecutive_snapshot_failures", lag.consecutive_failures}});
    }
  } else if (lagging_) {
    next_log_ = absl::InfinitePast();
    Log(LogLevel::kInfo, "snapshots caught up: every change older than the lag limit is durable",
        {{"durability_lag_limit", absl::FormatDuration(lag_limit_)}});
  }
  lagging_ = lag.lagging;
}

}  // namespace countersd
