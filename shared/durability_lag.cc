#include "shared/durability_lag.h"

#include <algorithm>
#include <atomic>

namespace countersd {

DurabilityLag ReadDurabilityLag(CounterTable& table, absl::Duration limit) {
  SnapshotControl& c = table.snapshot_control();
  DurabilityLag lag;
  // The regions first, then undurable_since: a writer stores the latter
  // before it clears the former (control.h invariant 4).
  uint32_t oldest = table.OldestUncopiedChange();
  const uint32_t in_flight = c.undurable_since.load(std::memory_order_acquire);
  if (in_flight != 0 && (oldest == 0 || in_flight < oldest)) oldest = in_flight;
  lag.behind = oldest != 0;
  if (lag.behind) lag.oldest_age = ChangeStampAge(oldest);
  lag.consecutive_failures = c.consecutive_failures.load(std::memory_order_relaxed);
  lag.failures = c.failures.load(std::memory_order_relaxed);
  lag.lagging = lag.behind && lag.oldest_age > limit;
  return lag;
}

absl::Duration DurabilityLagLimit(absl::Duration configured, absl::Duration snapshot_interval) {
  if (configured > absl::ZeroDuration()) return configured;
  return std::max(absl::Seconds(10), 10 * snapshot_interval);
}

}  // namespace countersd
