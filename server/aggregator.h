// The aggregator process: writes durable point-in-time snapshots of the
// table, periodically and on request. See aggregator.cc for how it works.
#ifndef COUNTERSD_SERVER_AGGREGATOR_H_
#define COUNTERSD_SERVER_AGGREGATOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "shared/counter_table.h"
#include "shared/snapshot_file.h"

namespace countersd {

// Takes and writes snapshots into one SnapshotFile. One per process; only
// one process at a time may write a given snapshot file (the supervisor
// guarantees it).
class Aggregator {
 public:
  // Opens (creating if needed) <data_dir>/counters.snap for writing.
  static absl::StatusOr<std::unique_ptr<Aggregator>> Open(CounterTable* table,
                                                          const std::string& data_dir);

  // Takes one point-in-time snapshot (SnapshotForEach), writes it and makes
  // it durable; publishes the outcome in table->snapshot_control() (but not
  // done_seq: the caller does that). An msync/fsync failure is returned and
  // logged at error level; it is never reported as success.
  absl::StatusOr<SnapshotMetaInfo> TakeSnapshot();

  // The process's main loop, in the forked aggregator process: a snapshot
  // at once, then every `interval` and whenever a handler asks (see
  // control.h), until SIGTERM/SIGINT, then a final snapshot. Returns the
  // exit code: 0, or 1 if the final snapshot failed.
  // REQUIRES: SIGTERM and SIGINT blocked in the calling thread.
  int Run(absl::Duration interval);

  // Newest durable generation in the file (0: none).
  uint64_t file_generation() const { return file_->generation(); }

 private:
  Aggregator() = default;
  CounterTable* table_ = nullptr;
  std::unique_ptr<SnapshotFile> file_;
  std::string buffer_;  // reused between snapshots
  uint64_t taken_ = 0;
  bool last_ok_ = false;  // the last snapshot attempt reached disk
};

// Entry point of the forked aggregator process; returns its exit code.
int RunAggregatorProcess(CounterTable* table, const std::string& data_dir, absl::Duration interval);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_AGGREGATOR_H_
