// The supervisor (like nginx's master process and PostgreSQL's postmaster).
//
// How it works, step by step:
//
//  Start
//   1. Reserve each TCP address of --listen (port_reservation.h): fail if
//      another process holds it; resolve port 0 to a real port. This comes
//      first, so that a port clash fails before anything is created on disk.
//   2. Lock the data directory (data_dir_lock.h): create it if missing, or
//      refuse one other users can write; an exclusive flock on
//      <data-dir>/LOCK, inherited by every child, so it is held until the
//      last process of this daemon exits. Another daemon holding it =>
//      fail, naming its pid.
//  2b. Create each unix socket of --listen (unix_listener.h: a stale file
//      is replaced only now that the lock is held) and, with TLS on, the
//      checked copy of the TLS files the handlers serve (tls_staging.h).
//   3. Decide which table to serve (table_selection.h): first fence out
//      the processes attached to the previous daemon, then trust the live
//      map, restore the last snapshot (and replay the log of durable
//      writes onto it), create a new table, or refuse to start. Open
//      re-initialises every lock and semaphore in the mapping.
//  3a. If the log of durable writes has segments, a snapshot that holds
//      them all, then the segments removed (supervisor_wal.cc).
//  3b. Unless --attach=false, serve <data-dir>/attach.sock and open the
//      table to attached processes (attach_service.h).
//   4. Block SIGTERM, SIGINT, SIGCHLD and SIGHUP; their handlers only set
//      sig_atomic_t flags. The main loop waits in ppoll() with them unblocked
//      (atomically, so a signal cannot slip in between check and sleep),
//      and on the attach socket.
//   5. Fork the aggregator and N handlers. No gRPC object exists in this
//      process, so each child creates its own gRPC server safely. (Nothing
//      this file includes declares one: the build fails if its include
//      closure reaches a gRPC header, and the handler's entry point comes
//      from main.cc as a function pointer, so this library links no gRPC.)
//      A child asks for SIGKILL when the supervisor dies (PR_SET_PDEATHSIG)
//      and exits if it already has (RunChild says why SIGKILL).
//
//  Main loop (until SIGTERM/SIGINT)
//   6b. SIGHUP: re-read --auth-file (the last good policy is what handlers
//      spawned later start with) and pass SIGHUP on to the handlers.
//   6. SIGCHLD: reap every exited child (HandleExit, also used for the
//      aggregator at shutdown): RecoverDeadProcess(pid) releases the stripes
//      it held and rolls back its half-done insert or batch; log role, pid,
//      exit status or signal, uptime and what was repaired. Schedule a
//      respawn after the child's back-off (100ms doubling to 10s; reset once
//      a child lived 10s).
//   7. Respawn children whose back-off has passed.
//  7b. Log at error level, every interval, while changes older than the
//      durability lag limit are in no durable snapshot (durability_watch.h).
//  7c. With TLS on, every --tls-reload-interval: re-check the TLS files and
//      publish them to the handlers if they changed and pass (tls_staging.h).
//   8. Once every handler has marked itself ready in its stats slot, log
//      "ready" with the resolved listen address (tests and operators wait
//      for this line), then tell systemd READY=1; later changes are its
//      STATUS= (supervisor_readiness.cc, systemd_notify.h).
//  8b. Before every wait, WATCHDOG=1 if half of systemd's WatchdogSec= has
//      passed; the wait is no longer than until the next is due.
//   9. Every LivenessCheckPeriod (a quarter of --lock-hold-limit): the
//      liveness checks (child_liveness.cc). A child stopped for
//      --lock-hold-limit while it holds a stripe, or a handler whose serving
//      loop has not turned for --handler-stall-limit, is logged and
//      SIGKILLed; step 6 then recovers and respawns it. Not during
//      shutdown, which has deadlines of its own.
//  9b. Every turn: the attach socket's grants, and the attached processes
//      that died, repaired and their slots freed (attach_service.h).
//
//  Shutdown (SIGTERM or SIGINT)
//  10. No more respawns. SIGTERM to the handlers: each stops accepting,
//      fails new calls UNAVAILABLE, finishes calls in flight within
//      --drain-timeout and exits. Handlers still there after the drain
//      timeout plus a margin get SIGKILL.
//  10b. Fence out the attached processes (AttachService::Stop), so that
//      the final snapshot holds all they wrote and nothing changes after.
//  11. SIGTERM to the aggregator: it writes a final snapshot and exits 0
//      (1 if that snapshot failed). If no aggregator runs, the supervisor
//      writes the final snapshot itself.
//  12. Mark the table cleanly shut down (flag + msync) and exit 0; exit 1 if
//      the final snapshot or the mark failed. No mark when an attached
//      process stayed inside a critical section: the next start repairs.
#include "server/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/aggregator.h"
#include "server/auth_policy.h"
#include "server/data_dir_lock.h"
#include "server/durability_watch.h"
#include "server/handler_process.h"
#include "server/snapshot_writer.h"
#include "server/table_selection.h"
#include "server/transport_config.h"
#include "shared/durability_lag.h"
#include "shared/log.h"
#include "shared/monotonic_time.h"
#include "shared/status_macros.h"
#include "shared/sys.h"

namespace countersd {
namespace {

volatile sig_atomic_t g_stop_signal = 0;
volatile sig_atomic_t g_child_exited = 0;
volatile sig_atomic_t g_reload = 0;

void OnStopSignal(int sig) { g_stop_signal = sig; }
void OnChildSignal(int) { g_child_exited = 1; }
void OnReloadSignal(int) { g_reload = 1; }

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by ", SignalName(WTERMSIG(status)),
                        WCOREDUMP(status) ? " (core dumped)" : "");
  }
  return absl::StrCat("wait status ", status);
}

}  // namespace

const char* Supervisor::RoleName(ProcessRole role) {
  switch (role) {
    case ProcessRole::kHandler:
      return "handler";
    case ProcessRole::kAggregator:
      return "aggregator";
    default:
      return "child";
  }
}

std::string Supervisor::FormatSeconds(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1)));
}

Supervisor::Supervisor(Config config, HandlerProcessMain run_handler)
    : config_(std::move(config)),
      run_handler_(run_handler),
      self_(getpid()),
      liveness_limits_{.lock_hold_limit = config_.lock_hold_limit,
                       .handler_stall_limit = config_.handler_stall_limit},
      auth_policy_(config_.auth_policy) {}

Supervisor::~Supervisor() = default;

absl::Status Supervisor::Start() {
  ASSIGN_OR_RETURN(std::vector<ListenAddress> listen, ParseListenList(config_.listen));
  for (const ListenAddress& a : listen) {  // 1
    if (a.kind != ListenAddress::Kind::kTcp) continue;
    ASSIGN_OR_RETURN(PortReservation port, PortReservation::Reserve(a.address));
    ports_.push_back(std::move(port));
  }
  ASSIGN_OR_RETURN(DataDirLock lock, DataDirLock::Acquire(config_.data_dir, self_));  // 2
  dir_lock_.emplace(std::move(lock));
  RETURN_IF_ERROR(StartListeners());  // 2b
  ASSIGN_OR_RETURN(table_,
                   SelectAndOpenTable({.data_dir = config_.data_dir,  // 3
                                       .capacity = config_.capacity,
                                       .capacity_given = config_.capacity_given,
                                       .trust_untrusted_map = config_.trust_untrusted_map}));
  // Before the fork: every handler inherits the limits.
  table_->ConfigureSessions(config_.sessions_max, config_.session_ttl);
  RetireLogAtStart();  // 3a
  ASSIGN_OR_RETURN(StatsArea stats, StatsArea::Create());
  stats_.emplace(std::move(stats));
  if (config_.attach.enabled) {  // 3b
    ASSIGN_OR_RETURN(AttachService attach, AttachService::Start(table_.get(), config_.data_dir,
                                                                config_.attach.group, &*stats_));
    attach_.emplace(std::move(attach));
  } else {
    AttachService::RemoveSocket(config_.data_dir);  // an earlier run's: "refused" would mislead
  }
  return absl::OkStatus();
}

int Supervisor::Run() {
  SetLogFormat(config_.log_format);
  SetLogMinLevel(config_.log_level);
  SetLogProcessName("countersd");
  signal(SIGPIPE, SIG_IGN);  // a closed stderr must not kill the daemon

  // 4. Signals: block first, so nothing is lost before the loop waits.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGCHLD);
  sigaddset(&blocked, SIGHUP);  // reloads --auth-file; children inherit it blocked
  sigprocmask(SIG_BLOCK, &blocked, nullptr);
  struct sigaction sa = {};
  sa.sa_handler = OnReloadSignal;
  sigaction(SIGHUP, &sa, nullptr);
  sa.sa_handler = OnStopSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = OnChildSignal;
  sigaction(SIGCHLD, &sa, nullptr);

  Log(LogLevel::kInfo, "starting",
      {{"listen", config_.listen},
       {"data_dir", config_.data_dir},
       {"handlers", config_.handlers},
       {"handlers_because", config_.handlers_because},
       {"snapshot_interval", absl::FormatDuration(config_.snapshot_interval)}});
  for (const std::string& w : config_.warnings) Log(LogLevel::kWarning, w);
  if (std::optional<std::string> warning = ProtectedModeWarning(config_)) {
    Log(LogLevel::kWarning, *warning, {{"listen", config_.listen}});
  }
  systemd_.Status("starting: opening the data directory and the table");
  if (absl::Status s = Start(); !s.ok()) {
    Log(LogLevel::kError, absl::StrCat("cannot start: ", s.message()),
        {{"code", absl::StatusCodeToString(s.code())}});
    return 1;
  }

  // 5. The children.
  for (int i = 0; i < config_.handlers; ++i) children_.push_back({ProcessRole::kHandler, i});
  children_.push_back({ProcessRole::kAggregator, 0});
  for (Child& c : children_) {
    if (c.role == ProcessRole::kAggregator) Spawn(c);  // first, so a snapshot exists early
  }
  for (Child& c : children_) {
    if (c.role == ProcessRole::kHandler) Spawn(c);
  }

  // Main loop.
  DurabilityWatch durability(
      table_.get(), DurabilityLagLimit(config_.durability_lag_limit, config_.snapshot_interval),
      config_.snapshot_interval);
  while (g_stop_signal == 0) {
    if (g_child_exited) ReapChildren();             // 6
    if (g_reload) ReloadAuthFile();                 // 6b
    RespawnDue();                                   // 7
    durability.Poll(MonotonicNow());                   // 7b: durability_watch.h
    if (tls_ && MonotonicNow() >= next_tls_poll_) {    // 7c: tls_staging.h
      tls_->Poll();
      next_tls_poll_ = MonotonicNow() + config_.tls_reload_interval;
    }
    TrackReadiness();                               // 8: supervisor_readiness.cc
    absl::Duration timeout = std::min(CheckLivenessIfDue(),  // 9
                                      announced_ready_ ? absl::Seconds(1) : absl::Milliseconds(20));
    if (attach_) timeout = std::min(timeout, attach_->Poll(MonotonicNow()));  // 9b
    if (tls_) {
      timeout = std::min(timeout, std::max(next_tls_poll_ - MonotonicNow(), absl::ZeroDuration()));
    }
    absl::Time now = MonotonicNow();
    for (const Child& c : children_) {
      if (c.pid == 0)
        timeout = std::min(timeout, std::max(c.restart_at - now, absl::ZeroDuration()));
    }
    WaitForSignal(timeout);
  }
  return Shutdown(g_stop_signal);
}

void Supervisor::WaitForSignal(absl::Duration timeout) {
  timeout = std::min(timeout, systemd_.KeepAlive());  // 8b
  // During shutdown the stop flag stays set; only new child exits matter.
  if ((!stopping_ && (g_stop_signal != 0 || g_reload != 0)) || g_child_exited != 0) return;
  sigset_t unblocked;
  sigprocmask(SIG_SETMASK, nullptr, &unblocked);
  sigdelset(&unblocked, SIGTERM);
  sigdelset(&unblocked, SIGINT);
  sigdelset(&unblocked, SIGCHLD);
  if (!stopping_) sigdelset(&unblocked, SIGHUP);
  struct timespec ts = absl::ToTimespec(std::max(timeout, absl::ZeroDuration()));
  pollfd attach = {.fd = attach_ && !stopping_ ? attach_->fd() : -1, .events = POLLIN, .revents = 0};
  ppoll(&attach, 1, &ts, &unblocked);  // EINTR on a signal: the flags say which
}

void Supervisor::Spawn(Child& child) {
  pid_t pid = fork();
  if (pid < 0) {
    Log(LogLevel::kError, absl::StrCat("fork failed: ", strerror(errno)),
        {{"role", RoleName(child.role)}});
    ScheduleRestart(child, MonotonicNow());
    return;
  }
  if (pid == 0) RunChild(child);
  if (child.role == ProcessRole::kHandler) stats_->SetHandlerPid(child.index, pid);
  child.pid = pid;
  child.started = MonotonicNow();
  child.liveness = {.stopped_since = 0, .watched_since = CounterTable::HeartbeatNow()};
  child.killed_because = nullptr;
  Log(LogLevel::kInfo, absl::StrCat("started ", RoleName(child.role)),
      {{"role", RoleName(child.role)}, {"child_pid", pid}, {"index", child.index}});
}

void Supervisor::RunChild(const Child& child) {
  // Die with the supervisor; it may already be gone (it died between the
  // fork and the prctl: then getppid() is no longer its pid).
  //
  // Why SIGKILL, not SIGTERM. The supervisor's death is a crash of the
  // daemon, and what its children must do then is free the data directory
  // (their inherited LOCK description keeps the flock) so that a new daemon
  // can start. SIGTERM does not ensure it: a stopped child acts on it only
  // once continued, and a child whose serving thread waits for a stripe
  // held by a stopped or dead process never finishes its drain (nobody is
  // left to release the stripe). SIGKILL ends a child whatever it does:
  // stopped, traced or asleep in sem_wait. Nothing is lost: every
  // acknowledged change is already in the shared mapping, and whatever a
  // killed child left half done (an insert, a batch) or held (its stripes)
  // is repaired by the next daemon's Open, as after a SIGKILL of the whole
  // daemon. A child releases nothing it does not hold: it just ends.
  //
  // PR_SET_PDEATHSIG fires when the *thread* that forked the child exits.
  // The supervisor forks from its main thread, which lives until the
  // process exits, and creates no other threads.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != self_) _exit(1);
  for (PortReservation& p : ports_) p.Close();  // the handlers bind their own sockets
  if (attach_) attach_->CloseInChild();          // the supervisor's own
  // The handlers accept from the unix sockets; the aggregator does not.
  if (child.role != ProcessRole::kHandler) {
    for (UnixListener& u : unix_sockets_) u.CloseInChild();
  } else if (metrics_listener_) {
    metrics_listener_->Close();  // the aggregator serves /metrics
  }
  // Default dispositions; SIGTERM/SIGINT stay blocked for sigwait().
  struct sigaction sa = {};
  sa.sa_handler = SIG_DFL;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGCHLD, &sa, nullptr);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  SetLogProcessName(absl::StrCat("countersd/", RoleName(child.role)));

  int code = 1;
  if (child.role == ProcessRole::kHandler) {
    HandlerOptions options = HandlerOptions::FromConfig(config_, HandlerListenOf());
    options.auth_policy = auth_policy_;
    options.stats = &*stats_;
    options.stats_index = child.index;
    code = run_handler_(table_.get(), options);
  } else {
    code = RunAggregatorProcess(table_.get(), config_.data_dir, config_.snapshot_interval,
                                {.listen_fd = metrics_listener_ ? metrics_listener_->fd() : -1,
                                 .address = metrics_listener_ ? metrics_listener_->address() : "",
                                 .stats = &*stats_,
                                 .config = config_.metrics});
  }
  // No destructors: the table and the flock belong to the supervisor.
  _exit(code);
}

absl::Duration Supervisor::ScheduleRestart(Child& child, absl::Time now) {
  const absl::Duration wait = child.backoff;
  child.restart_at = now + wait;
  child.backoff = std::min(child.backoff * 2, kMaxBackoff);
  return wait;
}

void Supervisor::HandleExit(pid_t pid, int status) {
  RecoveryReport r = table_->RecoverDeadProcess(pid);
  auto it = std::find_if(children_.begin(), children_.end(),
                         [pid](const Child& c) { return c.pid == pid; });
  if (it == children_.end()) return;  // not ours to track (cannot happen)
  Child& c = *it;
  absl::Time now = MonotonicNow();
  absl::Duration uptime = now - c.started;
  c.pid = 0;
  bool expected = stopping_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  const bool killed = c.killed_because != nullptr;  // by the liveness checks
  LogLevel level = expected ? LogLevel::kInfo : LogLevel::kError;
  Log(level, absl::StrCat(RoleName(c.role), " exited"),
      {{"role", RoleName(c.role)},
       {"child_pid", pid},
       {"index", c.index},
       {"status", DescribeWaitStatus(status)},
       {"killed_because", killed ? c.killed_because : ""},
       {"uptime", FormatSeconds(uptime)},
       {"stripes_released", r.stripes_released},
       {"inserts_rolled_back", r.inserts_rolled_back},
       {"batches_rolled_back", r.batches_rolled_back},
       {"journals_freed", r.journals_freed}});
  c.killed_because = nullptr;
  stats_->RecordForceReleased(static_cast<uint64_t>(r.stripes_released));
  if (stopping_) return;
  stats_->RecordRestart(
      c.role == ProcessRole::kHandler ? RestartRole::kHandler : RestartRole::kAggregator,
      killed                ? ExitReason::kStalled
      : WIFSIGNALED(status) ? ExitReason::kSignaled
                            : ExitReason::kExited);
  if (uptime >= kStableUptime) c.backoff = kMinBackoff;
  absl::Duration wait = ScheduleRestart(c, now);
  Log(LogLevel::kInfo, absl::StrCat("respawning ", RoleName(c.role)),
      {{"role", RoleName(c.role)}, {"index", c.index}, {"after", FormatSeconds(wait)}});
}

void Supervisor::ReapChildren() {
  g_child_exited = 0;
  while (true) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    HandleExit(pid, status);
  }
}

void Supervisor::RespawnDue() {
  if (stopping_) return;
  absl::Time now = MonotonicNow();
  for (Child& c : children_) {
    if (c.pid == 0 && c.restart_at <= now) Spawn(c);
  }
}

bool Supervisor::AnyRunning(ProcessRole role) const {
  return std::any_of(children_.begin(), children_.end(),
                     [role](const Child& c) { return c.role == role && c.pid != 0; });
}

void Supervisor::ReloadAuthFile() {
  g_reload = 0;
  if (config_.auth_file.empty()) return;
  systemd_.Reloading();
  absl::StatusOr<std::shared_ptr<const AuthPolicy>> policy =
      ReloadAuthPolicy(config_.auth_file, LogLevel::kInfo);
  if (policy.ok()) auth_policy_ = *std::move(policy);
  SignalRole(ProcessRole::kHandler, SIGHUP);
  systemd_.Reloaded();
}

void Supervisor::SignalRole(ProcessRole role, int sig) {
  for (const Child& c : children_) {
    if (c.role == role && c.pid != 0) kill(c.pid, sig);
  }
}

bool Supervisor::WaitForRole(ProcessRole role, absl::Duration timeout) {
  absl::Time deadline = MonotonicNow() + timeout;
  while (true) {
    ReapChildren();
    if (!AnyRunning(role)) return true;
    absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) return false;
    // A handler draining may wait for the stripe of an attached process
    // that died: find it as in the main loop (step 9b).
    if (attach_) left = std::min(left, attach_->Poll(MonotonicNow()));
    WaitForSignal(left);
  }
}

int Supervisor::Shutdown(int signal) {
  stopping_ = true;
  systemd_.Stopping(absl::StrCat("stopping (", SignalName(signal),
                                 "): draining the handlers, then the final snapshot"));
  Log(LogLevel::kInfo, "shutting down",
      {{"signal", SignalName(signal)},
       {"drain_timeout", absl::FormatDuration(config_.drain_timeout)}});

  // 10. Drain the handlers.
  SignalRole(ProcessRole::kHandler, SIGTERM);
  if (!WaitForRole(ProcessRole::kHandler, config_.drain_timeout + absl::Seconds(5))) {
    Log(LogLevel::kWarning, "handlers did not stop after the drain timeout; killing them");
    SignalRole(ProcessRole::kHandler, SIGKILL);
    WaitForRole(ProcessRole::kHandler, absl::InfiniteDuration());
  }

  // 10b. No attached writer from now on.
  bool attachers_out = true;
  if (attach_) {
    if (absl::Status s = attach_->Stop(); !s.ok()) {
      attachers_out = false;
      Log(LogLevel::kError, "an attached process stayed inside a critical section; the table is "
          "not marked cleanly shut down and no final snapshot is taken; the next start repairs "
          "it", {{"error", s.ToString()}});
    }
  }

  // 11. The final snapshot.
  bool snapshot_ok = false;
  if (!attachers_out) {
    // None: it would wait for the stuck attached process's stripe.
    SignalRole(ProcessRole::kAggregator, SIGKILL);
    WaitForRole(ProcessRole::kAggregator, absl::InfiniteDuration());
  } else if (AnyRunning(ProcessRole::kAggregator)) {
    int exit_status = -1;
    // Reap it here (not in ReapChildren) to see its exit status.
    for (Child& c : children_) {
      if (c.role != ProcessRole::kAggregator || c.pid == 0) continue;
      kill(c.pid, SIGTERM);
      absl::Time deadline = MonotonicNow() + absl::Seconds(60);
      while (true) {
        int status = 0;
        pid_t r = waitpid(c.pid, &status, WNOHANG);
        if (r == c.pid) {
          exit_status = status;
          HandleExit(r, status);  // c.pid becomes 0
          break;
        }
        if (MonotonicNow() >= deadline) {
          Log(LogLevel::kError, "aggregator did not finish the final snapshot in 60s; killing it");
          kill(c.pid, SIGKILL);
          deadline = absl::InfiniteFuture();
        }
        g_child_exited = 0;
        WaitForSignal(std::min(deadline - MonotonicNow(), absl::Seconds(1)));
      }
    }
    snapshot_ok = WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0;
  } else {
    snapshot_ok = FinalSnapshotInSupervisor();
  }
  return MarkStopped(snapshot_ok, attachers_out);
}

}  // namespace countersd
