// Liveness of the supervisor's children.
//
// How it works. The supervisor runs CheckChild for every running child once
// per check period (LivenessCheckPeriod, config.h: a quarter of
// --lock-hold-limit), from its main loop:
//  1. It reads the child's state from /proc/<pid>/stat: a few hundred bytes
//     from procfs, no walk of the table. A child seen stopped ('T' by a
//     signal, 't' by a tracer) has its stopped_since set at the first check
//     that sees it; the first check that sees it running clears it.
//  2. A child stopped without a break for --lock-hold-limit: only then are
//     the stripes' owner words read (CounterTable::StripesHeldBy: one word
//     per stripe, at most 1,024 stripes, 128 bytes apart; nothing else of
//     the table). A stopped process can neither take nor release a stripe,
//     so one that holds a stripe now has held it all the time it was
//     stopped: it has held a stripe while not running for longer than the
//     limit, and is killed.
//  3. A handler's serving loop writes a heartbeat into its process slot at
//     every turn, and turns at least every HeartbeatInterval even when idle
//     (unary_call_loop.cc). A heartbeat older than --handler-stall-limit
//     means the loop made no progress: the handler is stopped, or its
//     serving thread is stuck (in gRPC, in a call, or waiting for a stripe
//     whose holder is not stopped). It is killed, so that its listening
//     socket stops taking connections that nobody serves, and respawned.
//     The heartbeat is judged only once the child has been watched for the
//     stall limit (watched_since), so that a supervisor that was stopped
//     together with its children (a terminal's ^Z stops the process group)
//     does not kill them for the time they all stood still: the supervisor
//     restarts every watch after a gap of its own (supervisor.cc).
// The supervisor then logs the finding (pid, role, stripe, state, how long),
// SIGKILLs the child and, when it reaps it, recovers it like any dead child
// (RecoverDeadProcess releases its stripes and rolls back its half-done
// work) and respawns it after the usual back-off.
//
// So one frozen holder stalls the others for at most --lock-hold-limit plus
// one check period (the first check that sees it stopped may come up to a
// period after it stopped) plus the reap and repair, which take
// milliseconds: FrozenHolderStallBound in config.h, 1.25 s by default.
//
// Choices:
//  - 'D' (uninterruptible sleep) is not treated as stopped. It is the
//    kernel doing I/O on the process's behalf (a page fault on the map
//    file, an msync), which ends by itself; SIGKILL is not even acted on
//    until it ends, and would then throw away work that was about to
//    complete. A holder stuck in D for longer than the stall limit shows as
//    stalled heartbeats of the handlers waiting for it.
//  - Only the state of the process's main thread is read. A stop by signal
//    and a debugger's all-stop (gdb's default) stop every thread, so the
//    main thread shows them.
//  - The aggregator has no heartbeat. It holds a stripe only while it copies
//    one region for a snapshot, so a stopped aggregator that holds one is
//    found by the lock-holder check like any child. Stopped while holding
//    nothing, it blocks nobody: it only delays snapshots, and its loop sleeps
//    for a whole --snapshot-interval and may spend seconds in msync on a
//    slow disk, which a heartbeat bound would have to allow for. Missing
//    snapshots are reported by the durability side (the health service and
//    GetStats), not by killing the writer.
#include "server/child_liveness.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace countersd {

char ParseProcessState(std::string_view stat) {
  // "pid (comm) S ppid ...": the state follows the last ')' and a space.
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string_view::npos || close_paren + 2 >= stat.size() ||
      stat[close_paren + 1] != ' ') {
    return '\0';
  }
  return stat[close_paren + 2];
}

char ReadProcessState(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return '\0';
  // The state comes within the first ~60 bytes after the 16-byte-max comm
  // (TASK_COMM_LEN); 512 is plenty.
  char buf[512];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return '\0';
  return ParseProcessState(std::string_view(buf, static_cast<size_t>(n)));
}

bool IsStoppedState(char state) { return state == 'T' || state == 't'; }

const char* LivenessFinding::reason() const {
  return kind == Kind::kStoppedHoldingStripe ? "stopped holding a stripe"
                                             : "serving loop stalled";
}

std::optional<LivenessFinding> CheckChild(const LivenessLimits& limits, const CounterTable& table,
                                          pid_t pid, bool has_heartbeat, int64_t now,
                                          LivenessWatch& watch) {
  const char state = ReadProcessState(pid);
  if (state == '\0' || state == 'Z') return std::nullopt;  // exited: the reaper recovers it
  // 1, 2.
  if (!IsStoppedState(state)) {
    watch.stopped_since = 0;
  } else if (watch.stopped_since == 0) {
    watch.stopped_since = now;
  } else if (absl::Nanoseconds(now - watch.stopped_since) >= limits.lock_hold_limit) {
    std::vector<uint32_t> stripes = table.StripesHeldBy(pid);
    if (!stripes.empty()) {
      return LivenessFinding{.kind = LivenessFinding::Kind::kStoppedHoldingStripe,
                             .state = state,
                             .stripes = std::move(stripes),
                             .how_long = absl::Nanoseconds(now - watch.stopped_since)};
    }
  }
  // 3.
  if (!has_heartbeat) return std::nullopt;
  const int64_t heartbeat = table.LastHeartbeat(pid);
  if (heartbeat == 0) return std::nullopt;  // not serving yet
  const absl::Duration silent = absl::Nanoseconds(now - heartbeat);
  if (silent >= limits.handler_stall_limit &&
      absl::Nanoseconds(now - watch.watched_since) >= limits.handler_stall_limit) {
    return LivenessFinding{.kind = LivenessFinding::Kind::kServingLoopStalled,
                           .state = state,
                           .stripes = {},
                           .how_long = silent};
  }
  return std::nullopt;
}

}  // namespace countersd
