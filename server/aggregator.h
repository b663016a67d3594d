// The aggregator process: gathers what the handlers did into durable state.
// It hosts the parts that work on the whole table rather than on one call;
// the SnapshotWriter (snapshot_writer.h), which it runs periodically and
// whenever a handler asks, and GET /metrics (metrics_server.h,
// metrics_page.h), served from its own thread. See aggregator.cc for how
// it works.
#ifndef COUNTERSD_SERVER_AGGREGATOR_H_
#define COUNTERSD_SERVER_AGGREGATOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/metrics_config.h"
#include "server/snapshot_writer.h"
#include "shared/counter_table.h"
#include "shared/stats_area.h"

namespace countersd {

class Aggregator {
 public:
  // REQUIRES: `table` outlives the aggregator. Its snapshots go to
  // <data_dir>/counters.snap, through `sys`.
  Aggregator(CounterTable* table, std::string data_dir, Sys* sys = RealSys());

  // The process's main loop: a snapshot at once, then every `interval` and
  // whenever a handler asks (see shared/control.h), until SIGTERM/SIGINT,
  // then a final snapshot. A snapshot file that cannot be opened (or made,
  // or grown: a full disk) fails that attempt like a failed write, and is
  // tried again at the next one: the process stays, answering requests
  // with the failure, rather than exit and be respawned. Returns the exit
  // code: 0, or 1 if the final snapshot failed.
  // REQUIRES: SIGTERM and SIGINT blocked in the calling thread.
  int Run(absl::Duration interval);

 private:
  // One snapshot attempt: opens the writer first if there is none.
  absl::StatusOr<SnapshotMetaInfo> Attempt();

  CounterTable* const table_;
  const std::string data_dir_;
  Sys* const sys_;
  std::unique_ptr<SnapshotWriter> writer_;  // null until counters.snap opens
};

// What the aggregator's /metrics serves. No endpoint when listen_fd < 0.
struct AggregatorMetrics {
  int listen_fd = -1;   // the supervisor's MetricsListener, inherited
  std::string address;  // its bound address, for the log line
  const StatsArea* stats = nullptr;
  MetricsConfig config;
};

// Entry point of the forked aggregator process: registers its stats slot,
// starts /metrics on `metrics.listen_fd` (logging "metrics listening on
// <address>") and runs an Aggregator; returns its exit code (1 if it could
// not register or start /metrics).
int RunAggregatorProcess(CounterTable* table, const std::string& data_dir, absl::Duration interval,
                         const AggregatorMetrics& metrics);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_AGGREGATOR_H_
