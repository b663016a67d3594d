// The supervisor: the daemon's first process. It owns the data directory and
// the table, forks the handler and aggregator processes, reaps and respawns
// them, and runs the shutdown sequence. It never creates a gRPC object: no
// header it includes declares one (the build checks it), and its library
// links no gRPC. See supervisor.cc for how it works, step by step.
#ifndef COUNTERSD_SERVER_SUPERVISOR_H_
#define COUNTERSD_SERVER_SUPERVISOR_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/attach_service.h"
#include "server/child_liveness.h"
#include "server/config.h"
#include "server/data_dir_lock.h"
#include "server/handler_process.h"
#include "server/metrics_listener.h"
#include "server/port_reservation.h"
#include "server/systemd_notify.h"
#include "server/tls_staging.h"
#include "server/unix_listener.h"
#include "shared/counter_table.h"
#include "shared/stats_area.h"

namespace countersd {

class Supervisor {
 public:
  // `run_handler` is what each forked handler process runs (main.cc passes
  // RunHandlerProcess); a parameter, so that this library needs no gRPC.
  Supervisor(Config config, HandlerProcessMain run_handler);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Runs the daemon until SIGTERM or SIGINT. Returns the process exit code:
  // 0 after a clean shutdown, 1 if it could not start (the log says why) or
  // if the final snapshot or the clean-shutdown mark failed.
  // REQUIRES: called once, from main, in a process with no other threads.
  int Run();

  // Back-off between respawns of one child: doubles from kMinBackoff to
  // kMaxBackoff, back to kMinBackoff once a child has lived kStableUptime.
  static constexpr absl::Duration kMinBackoff = absl::Milliseconds(100);
  static constexpr absl::Duration kMaxBackoff = absl::Seconds(10);
  static constexpr absl::Duration kStableUptime = absl::Seconds(10);

 private:
  // One child process the supervisor keeps alive.
  struct Child {
    ProcessRole role;
    int index;      // handler number (0..N-1); 0 for the aggregator
    pid_t pid = 0;  // 0: not running
    absl::Time started = absl::InfinitePast();
    absl::Duration backoff = kMinBackoff;
    absl::Time restart_at = absl::InfinitePast();  // when to respawn it, if pid == 0
    LivenessWatch liveness{};                      // what the liveness checks saw; reset at spawn
    const char* killed_because = nullptr;          // set when a liveness check killed it
  };

  // The log's words: a role's name; `d` truncated to the millisecond,
  // as text ("1.234s", "100ms").
  static const char* RoleName(ProcessRole role);
  static std::string FormatSeconds(absl::Duration d);

  absl::Status Start();  // port, data dir and flock, table selection
  void Spawn(Child& child);
  [[noreturn]] void RunChild(const Child& child);
  // Reaps every exited child (HandleExit each).
  void ReapChildren();
  // A reaped child: releases what `pid` held in the table
  // (RecoverDeadProcess), logs its exit status and what was repaired, marks
  // it not running and, unless stopping, schedules its respawn.
  void HandleExit(pid_t pid, int status);
  // Sets `child` to restart after its back-off from `now` and doubles the
  // back-off (up to kMaxBackoff). Returns the wait.
  static absl::Duration ScheduleRestart(Child& child, absl::Time now);
  void RespawnDue();
  // Every LivenessCheckPeriod (supervisor_liveness.cc): checks each
  // running child (CheckChild) and SIGKILLs, with a log line, those found
  // stopped holding a stripe or with a stalled serving loop. Returns how
  // long until the next check is due.
  absl::Duration CheckLivenessIfDue();
  // Step 8 (supervisor_readiness.cc): the handlers that serve (running,
  // slot marked ready); the "ready" line and systemd's READY=1 the first
  // time all do, systemd's STATUS= at each change.
  int ServingHandlers() const;
  void TrackReadiness();
  // Whether a child of `role` runs (has not been reaped).
  bool AnyRunning(ProcessRole role) const;
  // Sleeps until a signal arrives or `timeout` passes.
  void WaitForSignal(absl::Duration timeout);
  // Reaps until no child of `role` runs, or `timeout` passes; true if none runs.
  bool WaitForRole(ProcessRole role, absl::Duration timeout);
  void SignalRole(ProcessRole role, int sig);
  // SIGHUP: re-reads --auth-file (kept for handlers spawned later; a bad
  // file is logged and the last good policy kept) and passes the SIGHUP to
  // every handler, which re-reads it too (handler_process.cc).
  void ReloadAuthFile();
  int Shutdown(int signal);
  // Shutdown's last steps (supervisor_final_snapshot.cc): step 11 when no
  // aggregator is running (the supervisor writes the final snapshot
  // itself; true if it is durable), and step 12, the clean-shutdown mark
  // (not when an attached process may still write: `attachers_out` false)
  // and the "stopped" line (returns the exit code).
  bool FinalSnapshotInSupervisor();
  // Step 3a (supervisor_wal.cc): a snapshot that holds the log of durable
  // writes, then the log's segments removed.
  void RetireLogAtStart();
  int MarkStopped(bool snapshot_ok, bool attachers_out);

  const Config config_;
  const HandlerProcessMain run_handler_;
  const pid_t self_;
  std::optional<DataDirLock> dir_lock_;  // held until the supervisor exits
  // The listeners (Start, StartListeners): TCP ports reserved, unix sockets
  // made, the TLS files' served copy; what the handlers are given.
  std::vector<PortReservation> ports_;
  std::vector<UnixListener> unix_sockets_;
  std::optional<TlsStaging> tls_;
  absl::Time next_tls_poll_ = absl::InfiniteFuture();
  HandlerListen HandlerListenOf() const;
  absl::Status StartListeners();  // after the data directory's lock
  std::optional<MetricsListener> metrics_listener_;  // --metrics-listen's socket (StartListeners)
  std::unique_ptr<CounterTable> table_;
  std::optional<StatsArea> stats_;  // made in Start, before any fork (stats_area.h)
  std::optional<AttachService> attach_;  // <data-dir>/attach.sock, unless --attach=false
  std::vector<Child> children_;  // handlers first, then the aggregator
  bool stopping_ = false;
  bool announced_ready_ = false;
  int last_serving_handlers_ = -1;  // ServingHandlers() at the last TrackReadiness
  SystemdNotifier systemd_;         // READY=1, STATUS=, STOPPING=1, WATCHDOG=1
  const LivenessLimits liveness_limits_;
  int64_t last_liveness_check_ = 0;  // CounterTable::HeartbeatNow() of the last check
  uint64_t liveness_kills_ = 0;      // children killed by the liveness checks, since start
  std::shared_ptr<const AuthPolicy> auth_policy_;  // the last good --auth-file
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_SUPERVISOR_H_
