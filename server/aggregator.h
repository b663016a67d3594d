// The aggregator process: gathers what the handlers did into durable state.
// It hosts the parts that work on the whole table rather than on one call;
// today one, the SnapshotWriter (snapshot_writer.h), which it runs
// periodically and whenever a handler asks. See aggregator.cc for how it
// works.
#ifndef COUNTERSD_SERVER_AGGREGATOR_H_
#define COUNTERSD_SERVER_AGGREGATOR_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "server/snapshot_writer.h"
#include "shared/counter_table.h"

namespace countersd {

class Aggregator {
 public:
  // REQUIRES: `table` outlives the aggregator; `snapshots` writes its
  // snapshots.
  Aggregator(CounterTable* table, std::unique_ptr<SnapshotWriter> snapshots);

  // The process's main loop: a snapshot at once, then every `interval` and
  // whenever a handler asks (see shared/control.h), until SIGTERM/SIGINT,
  // then a final snapshot. Returns the exit code: 0, or 1 if the final
  // snapshot failed.
  // REQUIRES: SIGTERM and SIGINT blocked in the calling thread.
  int Run(absl::Duration interval);

 private:
  CounterTable* const table_;
  const std::unique_ptr<SnapshotWriter> snapshots_;
};

// Entry point of the forked aggregator process: registers its stats slot,
// opens the snapshot file and runs an Aggregator; returns its exit code (1 if
// it could not start).
int RunAggregatorProcess(CounterTable* table, const std::string& data_dir, absl::Duration interval);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_AGGREGATOR_H_
