// The supervisor's liveness checks of its children: a child stopped while it
// holds a lock stripe, and a handler whose serving loop stopped making
// progress. Both would wedge the daemon in silence otherwise: every other
// handler's single serving thread waits for a stripe a stopped process
// holds, and a stopped handler's listening socket keeps taking connections
// that nobody serves. See child_liveness.cc for how it works and why.
// gRPC-free (the supervisor includes it).
#ifndef COUNTERSD_SERVER_CHILD_LIVENESS_H_
#define COUNTERSD_SERVER_CHILD_LIVENESS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "shared/counter_table.h"

namespace countersd {

// The one-letter state of a process as /proc/<pid>/stat gives it: 'R'
// running, 'S' sleeping, 'D' uninterruptible (disk) sleep, 'T' stopped by a
// signal, 't' stopped by a tracer, 'Z' zombie, ... '\0' if there is no such
// process or the file cannot be parsed. It is the state of the process's
// main thread; a stop (SIGSTOP, or a debugger's all-stop) stops every thread.
char ReadProcessState(pid_t pid);
// The state field of the contents of a /proc/<pid>/stat file ('\0' if
// malformed). The command name in parentheses may hold spaces and ')'.
char ParseProcessState(std::string_view stat);
// 'T' or 't'.
bool IsStoppedState(char state);

struct LivenessLimits {
  // A child stopped for this long while it holds a stripe is killed.
  absl::Duration lock_hold_limit;
  // A handler whose serving loop has not turned for this long is killed.
  absl::Duration handler_stall_limit;
};

// What the checks have seen of one child; reset at every spawn. Times are
// CounterTable::HeartbeatNow() nanoseconds (monotonic).
struct LivenessWatch {
  // Since when the checks have seen it stopped without a break; 0: not
  // stopped at the last check.
  int64_t stopped_since = 0;
  // Since when the checks have watched it without a gap: its heartbeat is
  // judged only once it has been watched for the stall limit.
  int64_t watched_since = 0;
};

// Why a child is to be killed, and what was seen.
struct LivenessFinding {
  enum class Kind { kStoppedHoldingStripe, kServingLoopStalled };
  Kind kind;
  char state;                     // its process state at the check
  std::vector<uint32_t> stripes;  // the stripes it holds (kStoppedHoldingStripe)
  absl::Duration how_long;        // stopped for / no heartbeat for
  // "stopped holding a stripe" or "serving loop stalled".
  const char* reason() const;
};

// One check of the running child `pid` at `now`: updates `watch`, and
// returns a finding if the child is to be killed. `has_heartbeat`: the child
// is a handler, whose serving loop beats (CounterTable::Heartbeat). Reads
// the process's state and, only for a child stopped for the lock-hold
// limit, the stripes' owner words.
std::optional<LivenessFinding> CheckChild(const LivenessLimits& limits, const CounterTable& table,
                                          pid_t pid, bool has_heartbeat, int64_t now,
                                          LivenessWatch& watch);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CHILD_LIVENESS_H_
