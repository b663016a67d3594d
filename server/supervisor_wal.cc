// The supervisor's step 3a: the log of durable writes at start
// (shared/write_ahead_log.h). Whatever the log holds is in the table by
// now: the map was trusted (it has every write), or the start restored a
// snapshot and replayed the log onto it (table_selection.cc). So one
// snapshot, written here before any handler runs, holds every record, and
// then every segment can go, those of handler indexes no longer run
// included. Without a durable snapshot the segments stay (a host crash
// would need them) and the start goes on. Part of Supervisor; no gRPC.
#include <filesystem>
#include <system_error>

#include "server/snapshot_writer.h"
#include "server/supervisor.h"
#include "shared/log.h"
#include "shared/write_ahead_log.h"

namespace countersd {

void Supervisor::RetireLogAtStart() {
  const std::vector<std::string> segments = WalSegments(config_.data_dir);
  if (segments.empty()) return;
  absl::StatusOr<std::unique_ptr<SnapshotWriter>> snapshots =
      SnapshotWriter::Open(table_.get(), config_.data_dir);
  absl::StatusOr<SnapshotMetaInfo> meta =
      snapshots.ok() ? (*snapshots)->Write() : absl::StatusOr<SnapshotMetaInfo>(snapshots.status());
  if (!meta.ok()) {
    Log(LogLevel::kWarning, "the log of durable writes is kept: no snapshot could hold it yet",
        {{"segments", static_cast<uint64_t>(segments.size())},
         {"error", meta.status().ToString()}});
    return;
  }
  std::error_code ec;
  for (const std::string& path : segments) std::filesystem::remove(path, ec);
  (void)RealSys()->FsyncDir(config_.data_dir);
  Log(LogLevel::kInfo, "the log of durable writes is in a snapshot now; its segments are removed",
      {{"segments", static_cast<uint64_t>(segments.size())},
       {"generation", meta->generation},
       {"wal_floor", meta->wal_marks.floor}});
}

}  // namespace countersd
