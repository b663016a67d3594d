// The end of the supervisor's shutdown (Shutdown's steps 11 and 12,
// supervisor.cc): the final snapshot when no aggregator is running to write
// it (one was between respawns), and the clean-shutdown mark that lets the
// next start trust the map without a restore. Part of Supervisor; no gRPC.
#include <memory>

#include "server/snapshot_writer.h"
#include "server/supervisor.h"
#include "shared/log.h"

namespace countersd {

bool Supervisor::FinalSnapshotInSupervisor() {
  Log(LogLevel::kInfo, "no aggregator running; writing the final snapshot in the supervisor");
  absl::StatusOr<std::unique_ptr<SnapshotWriter>> snapshots =
      SnapshotWriter::Open(table_.get(), config_.data_dir);
  if (!snapshots.ok()) {
    Log(LogLevel::kError, "cannot open the snapshot file for the final snapshot",
        {{"error", snapshots.status().ToString()}});
    return false;
  }
  absl::StatusOr<SnapshotMetaInfo> meta = (*snapshots)->Write();
  if (!meta.ok()) return false;  // Write logged why
  Log(LogLevel::kInfo, "final snapshot written",
      {{"generation", meta->generation}, {"counters", meta->counters}, {"bytes", meta->bytes}});
  return true;
}

int Supervisor::MarkStopped(bool snapshot_ok, bool attachers_out) {
  absl::Status marked =
      attachers_out ? table_->MarkCleanShutdown()
                    : absl::FailedPreconditionError("an attached process may still write");
  if (!marked.ok()) {
    Log(LogLevel::kError, "cannot mark the table cleanly shut down",
        {{"error", marked.ToString()}});
  }
  int code = (snapshot_ok && marked.ok()) ? 0 : 1;
  Log(code == 0 ? LogLevel::kInfo : LogLevel::kError, "stopped",
      {{"final_snapshot", snapshot_ok ? "ok" : "FAILED"},
       {"clean_shutdown_mark", marked.ok() ? "ok" : "FAILED"},
       {"exit_code", code}});
  return code;
}

}  // namespace countersd
