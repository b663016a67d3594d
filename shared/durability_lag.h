// How far the durable snapshots lag behind the table, read from the mapping
// alone (SnapshotControl invariant 4, control.h), so that any process can
// tell, whatever the snapshot writer does: a writer that fails, crash-loops,
// never starts or is stopped leaves the old change stamps in place, and the
// lag grows. The handlers' countersd.durability health service, GetStats and
// the supervisor's log line all read it here.
#ifndef COUNTERSD_SHARED_DURABILITY_LAG_H_
#define COUNTERSD_SHARED_DURABILITY_LAG_H_

#include <cstdint>

#include "absl/time/time.h"
#include "shared/counter_table.h"

namespace countersd {

struct DurabilityLag {
  bool behind = false;                             // some change is in no durable snapshot
  absl::Duration oldest_age = absl::ZeroDuration();  // of the oldest such change, to the second
  uint64_t consecutive_failures = 0;               // snapshot attempts failed since the last durable one
  uint64_t failures = 0;                           // since the table was opened
  // behind for longer than `limit` (ReadDurabilityLag's).
  bool lagging = false;
};

// Reads the lag now. Lock-free; any process that maps the table. `limit`
// decides `lagging` (see DurabilityLagLimit).
DurabilityLag ReadDurabilityLag(CounterTable& table, absl::Duration limit);

// The lag past which the daemon reports that snapshots are not being
// written (countersd.durability NOT_SERVING): `configured`
// (--durability-lag-limit) if nonzero, else max(10 s, 10 x
// snapshot_interval): ten intervals, so that a slow snapshot or two is no
// alarm, and never under 10 s, so that a short interval does not make a
// busy disk look like a broken one.
absl::Duration DurabilityLagLimit(absl::Duration configured, absl::Duration snapshot_interval);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_DURABILITY_LAG_H_
