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
  // Opens <data_dir>/counters.snap for writing (SnapshotFile::OpenForWrite:
  // creating it, setting an invalid one aside, or growing it to the table's
  // capacity, and logging what it did); the next generation follows the
  // newest valid one in the file. Errors name the failed call; the caller
  // reports them with PublishFailure. REQUIRES: `table` outlives the writer.
  static absl::StatusOr<std::unique_ptr<SnapshotWriter>> Open(CounterTable* table,
                                                              const std::string& data_dir,
                                                              Sys* sys = RealSys());

  // Takes one point-in-time snapshot (CounterTable::SnapshotForEach, which
  // never includes half of a batch), writes it and makes it durable. Keeps
  // SnapshotControl::undurable_since (control.h invariant 4): before the
  // copy starts, the oldest change it is to make durable; 0 once it is. On
  // success publishes generation, counters, bytes, time taken, longest pause
  // and when, with last_failed = 0 and consecutive_failures = 0. On failure
  // (an msync/fsync error) calls PublishFailure and returns the error: it is
  // never reported as success, and the next call is a fresh snapshot, not a
  // retry. Never touches request_seq or done_seq: the caller answers
  // requests.
  absl::StatusOr<SnapshotMetaInfo> Write();

  // A snapshot attempt that failed with `error` (a Write, or an Open that
  // left no writer): logs it at error level with what is at stake, counts
  // it in failures and consecutive_failures and sets last_failed = 1.
  static void PublishFailure(CounterTable* table, const absl::Status& error);

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
