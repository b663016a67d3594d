// Writing durable point-in-time snapshots of the table. See
// snapshot_writer.cc for the order of the writes.
#ifndef COUNTERSD_SERVER_SNAPSHOT_WRITER_H_
#define COUNTERSD_SERVER_SNAPSHOT_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "shared/counter_table.h"
#include "shared/snapshot_file.h"

namespace countersd {

// Takes the table's point-in-time copy, writes it durably into one
// SnapshotFile, and publishes each outcome in the table's SnapshotControl
// words. Only one process at a time may write a given snapshot file (the
// supervisor guarantees it: the aggregator, or the supervisor itself once no
// aggregator runs). Not thread-safe: one thread writes.
class SnapshotWriter {
 public:
  // Opens (creating if needed) <data_dir>/counters.snap for writing; the
  // next generation follows the newest valid one in the file. Errors name
  // the failed call. REQUIRES: `table` outlives the writer.
  static absl::StatusOr<std::unique_ptr<SnapshotWriter>> Open(CounterTable* table,
                                                              const std::string& data_dir,
                                                              Sys* sys = RealSys());

  // Takes one point-in-time snapshot (CounterTable::SnapshotForEach, which
  // never includes half of a batch), writes it and makes it durable. On
  // success publishes generation, counters, bytes, time taken, longest pause
  // and when, with last_failed = 0, in table->snapshot_control(). On failure
  // (an msync/fsync error) logs it at error level, counts it in `failures`,
  // sets last_failed = 1 and returns the error: it is never reported as
  // success, and the next call is a fresh snapshot, not a retry. Never
  // touches request_seq or done_seq: the caller answers requests.
  absl::StatusOr<SnapshotMetaInfo> Write();

  // Newest durable generation in the file (0: none).
  uint64_t file_generation() const { return file_->generation(); }

 private:
  SnapshotWriter(CounterTable* table, std::unique_ptr<SnapshotFile> file);

  CounterTable* const table_;
  const std::unique_ptr<SnapshotFile> file_;
  std::string buffer_;  // the records of one snapshot, reused between snapshots
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_SNAPSHOT_WRITER_H_
