// GroupCommit: one handler's log of durable writes and the thread that
// makes them durable together (shared/write_ahead_log.h has how durable
// writes work; this is its steps 2, 3 and 5).
//
// How it works:
//  1. The serving thread applies a durable write, then Append()s its
//     record with a callback, and goes on serving: nothing it does waits
//     for the disk.
//  2. The commit thread takes every record appended since its last turn,
//     writes them to the handler's segment in one pwrite and syncs it once
//     (fsync), then calls each callback: OK, or INTERNAL naming the failed
//     call. While it syncs, new records pile up for its next turn: so
//     under load one sync serves as many writes as arrived during the
//     previous one, and a lone write waits for one sync.
//  3. A failed write or sync abandons the segment for good (the kernel may
//     have dropped its pages; a later sync could succeed without them) and
//     asks the aggregator for a snapshot, which makes what the failed
//     records wrote durable another way; the next records go to a new
//     segment.
//  4. Once a newer snapshot is durable (SnapshotControl::generation), the
//     thread starts a new segment at its next turn, and removes its closed
//     segments whose last LSN is at or below that snapshot's log floor.
// Segments are <data-dir>/durable.<handler index>.<n>.wal, n above any found;
// those a predecessor of the same index left (a respawn) are this
// handler's to remove once covered. The supervisor removes them all at
// start, after a snapshot that holds them (supervisor_wal.cc).
#ifndef COUNTERSD_SERVER_GROUP_COMMIT_H_
#define COUNTERSD_SERVER_GROUP_COMMIT_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shared/counter_table.h"
#include "shared/stats_area.h"
#include "shared/sys.h"
#include "shared/write_ahead_log.h"

namespace countersd {

class GroupCommit {
 public:
  // Called on the commit thread once the record is durable (OK) or is
  // known not to be (INTERNAL).
  using Done = std::function<void(absl::Status)>;

  // Starts the commit thread (its first record makes its first segment).
  // Each turn is counted in `row` (StatsArea::RecordLogSync), if given.
  static absl::StatusOr<std::unique_ptr<GroupCommit>> Start(CounterTable* table,
                                                            const std::string& data_dir,
                                                            int handler_index,
                                                            HandlerStatsRow* row = nullptr,
                                                            Sys* sys = RealSys());
  // Finishes what was appended (every Done is called), then stops.
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Any thread.
  void Append(const WalRecord& record, Done done);

  // Syncs done and records made durable, for tests and stats.
  uint64_t syncs() const;
  uint64_t records_synced() const;

 private:
  GroupCommit(CounterTable* table, std::string wal_dir, int handler_index, uint64_t next_segment,
              HandlerStatsRow* row, Sys* sys);
  void Run();
  // One turn: writes and syncs `bytes`, returns how it went.
  absl::Status Commit(const std::string& bytes, uint64_t last_lsn);
  void RemoveCoveredSegments();

  CounterTable* const table_;
  const std::string wal_dir_;
  const int handler_index_;
  HandlerStatsRow* const row_;
  Sys* const sys_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::string pending_;  // framed records, under mu_
  std::vector<Done> pending_done_;
  uint64_t pending_last_lsn_ = 0;
  bool stopping_ = false;
  uint64_t syncs_ = 0;
  uint64_t records_synced_ = 0;

  // The commit thread's own.
  std::unique_ptr<WalSegment> segment_;
  uint64_t segment_last_lsn_ = 0;
  uint64_t next_segment_;
  uint64_t seen_generation_ = 0;
  struct Closed {
    std::string path;
    uint64_t last_lsn;
  };
  std::vector<Closed> closed_;
  std::thread thread_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_GROUP_COMMIT_H_
