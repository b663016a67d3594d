// The supervisor's watch on the durability lag (shared/durability_lag.h):
// while some change older than the lag limit is in no durable snapshot, an
// error line every snapshot interval (at most once per supervisor loop, about
// a second), whatever the cause: a writer that fails, crash-loops, never
// opens its file, or is stopped. The supervisor is the one process that is
// always there to say it. One info line when the snapshots catch up.
// gRPC-free (the supervisor includes it).
#ifndef COUNTERSD_SERVER_DURABILITY_WATCH_H_
#define COUNTERSD_SERVER_DURABILITY_WATCH_H_

#include "absl/time/time.h"
#include "shared/counter_table.h"

namespace countersd {

class DurabilityWatch {
 public:
  // REQUIRES: `table` outlives the watch.
  DurabilityWatch(CounterTable* table, absl::Duration lag_limit, absl::Duration interval);

  // Reads the lag and logs as above. Call it from the supervisor's loop.
  void Poll(absl::Time now);

 private:
  CounterTable* const table_;
  const absl::Duration lag_limit_;
  const absl::Duration interval_;
  bool lagging_ = false;
  absl::Time next_log_ = absl::InfinitePast();
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_DURABILITY_WATCH_H_
