// The snapshot writer.
//
// How it works (one Write):
//  0. Before the copy starts, SnapshotControl::undurable_since becomes the
//     oldest of its old value and the regions' change stamps: the oldest
//     change this snapshot is to make durable (control.h invariant 4).
//  1. CounterTable::SnapshotForEach gives a point-in-time copy of the table
//     that never includes half of a batch (shared/counter_table.h); its
//     records are appended to one buffer that is reused between snapshots.
//  2. SnapshotFile::Write copies the buffer into the inactive half of the
//     double-buffered file, msyncs it, then writes and msyncs the meta page
//     that names it with the next generation (shared/snapshot_file.h). A
//     crash at any point leaves the previous snapshot valid.
//  3. The outcome goes into the SnapshotControl words in the mapping, where
//     the handlers' Snapshot and GetStats calls read it: on success the
//     result fields, then generation (release: a reader that sees the new
//     generation sees the fields of that snapshot), and undurable_since = 0;
//     on failure failures + 1, consecutive_failures + 1, last_failed = 1,
//     undurable_since kept, and a loud log line. An msync or
//     fsync error is never retried as if nothing happened: the kernel may
//     have dropped the pages, so the next snapshot is a fresh copy.
#include "server/snapshot_writer.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "shared/data_dir.h"
#include "shared/log.h"
#include "shared/monotonic_time.h"
#include "shared/status_macros.h"

namespace countersd {

SnapshotWriter::SnapshotWriter(CounterTable* table, std::unique_ptr<SnapshotFile> file)
    : table_(table), file_(std::move(file)) {}

absl::StatusOr<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Open(CounterTable* table,
                                                                     const std::string& data_dir,
                                                                     Sys* sys) {
  SnapshotOpenReport report;
  absl::StatusOr<std::unique_ptr<SnapshotFile>> file = SnapshotFile::OpenForWrite(
      absl::StrCat(data_dir, "/", kSnapshotFile), table->capacity(), sys, &report);
  if (!report.set_aside_as.empty()) {
    Log(LogLevel::kError, "snapshot file holds no valid snapshot; kept it aside",
        {{"file", kSnapshotFile},
         {"renamed_to", report.set_aside_as},
         {"error", report.invalid_reason},
         {"new_file", file.ok() ? "made" : "FAILED"}});
  }
  if (!file.ok()) return file.status();
  if (report.grown_from_bytes != 0) {
    Log(LogLevel::kWarning, "snapshot file was too small for the table's capacity; replaced it",
        {{"file", kSnapshotFile},
         {"capacity", table->capacity()},
         {"old_bytes", report.grown_from_bytes},
         {"generation_kept", report.carried_generation}});
  } else if (report.created && report.set_aside_as.empty()) {
    Log(LogLevel::kInfo, "created snapshot file",
        {{"file", kSnapshotFile}, {"capacity", table->capacity()}});
  }
  return std::unique_ptr<SnapshotWriter>(new SnapshotWriter(table, *std::move(file)));
}

void SnapshotWriter::PublishFailure(CounterTable* table, const absl::Status& error) {
  SnapshotControl& control = table->snapshot_control();
  control.failures.fetch_add(1, std::memory_order_relaxed);
  const uint64_t consecutive =
      control.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  control.last_failed.store(1, std::memory_order_release);
  Log(LogLevel::kError,
      "SNAPSHOT FAILED: it did not reach disk; the previous snapshot stays the newest valid one",
      {{"error", error.ToString()},
       {"consecutive_failures", consecutive},
       {"failures", control.failures.load(std::memory_order_relaxed)}});
}

absl::StatusOr<SnapshotMetaInfo> SnapshotWriter::Write() {
  SnapshotControl& control = table_->snapshot_control();
  // 0. Before SnapshotForEach starts the epoch (and clears the stamps).
  uint32_t pending = table_->OldestUncopiedChange();
  const uint32_t earlier = control.undurable_since.load(std::memory_order_relaxed);
  if (earlier != 0 && (pending == 0 || earlier < pending)) pending = earlier;
  control.undurable_since.store(pending, std::memory_order_seq_cst);
  absl::Time start = MonotonicNow();
  buffer_.clear();
  uint64_t count = 0, sessions = 0;
  // The counters, then the exactly-once sessions as of the same instant
  // (snapshot_format.h): a write and its session entry are both in it, or
  // neither.
  // And what of the log of durable writes it holds (write_ahead_log.h).
  WalMarks marks;
  uint64_t max_pause_ns = table_->SnapshotForEach(
      [this, &count](std::string_view key, int64_t value) {
        AppendSnapshotRecord(&buffer_, key, value);
        ++count;
      },
      [this, &sessions](const SessionRecord& session) {
        AppendSessionRecord(&buffer_, session);
        ++sessions;
      },
      &marks);
  absl::StatusOr<SnapshotMetaInfo> meta =
      file_->Write(buffer_, count, table_->capacity(), sessions, marks);
  uint64_t micros = static_cast<uint64_t>(absl::ToInt64Microseconds(MonotonicNow() - start));
  if (!meta.ok()) {
    PublishFailure(table_, absl::Status(meta.status().code(),
                                        absl::StrCat(meta.status().message(), " (", count,
                                                     " counters, ", buffer_.size(), " bytes)")));
    return meta.status();
  }
  control.counters.store(meta->counters, std::memory_order_relaxed);
  control.bytes.store(meta->bytes, std::memory_order_relaxed);
  control.micros.store(micros, std::memory_order_relaxed);
  control.max_pause_ns.store(max_pause_ns, std::memory_order_relaxed);
  control.unix_ns.store(meta->unix_ns, std::memory_order_relaxed);
  control.last_failed.store(0, std::memory_order_relaxed);
  control.consecutive_failures.store(0, std::memory_order_relaxed);
  control.undurable_since.store(0, std::memory_order_release);
  control.wal_floor.store(marks.floor, std::memory_order_release);
  control.generation.store(meta->generation, std::memory_order_release);
  return meta;
}

}  // namespace countersd
