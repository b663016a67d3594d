// The liveness checks of the supervisor's loop (step 9 of supervisor.cc):
// its children, judged by child_liveness.cc, and the attached processes,
// found dead by the attach service (attach_service.h). Part of Supervisor;
// no gRPC.
#include <signal.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/supervisor.h"
#include "shared/log.h"

namespace countersd {

absl::Duration Supervisor::CheckLivenessIfDue() {
  const absl::Duration period = LivenessCheckPeriod(config_.lock_hold_limit);
  const int64_t now = CounterTable::HeartbeatNow();
  const absl::Duration since_last = absl::Nanoseconds(now - last_liveness_check_);
  if (since_last < period) return period - since_last;
  // A supervisor that did not run for half the stall limit may have been
  // stopped together with its children (a terminal's ^Z stops the whole
  // process group), whose heartbeats are then old through no fault of
  // theirs until their loops turn again: judge heartbeats only after a
  // stall limit of watching without such a gap. (A stop seen at two checks
  // needs no such care: a stopped process cannot release a stripe.)
  const bool gap = last_liveness_check_ != 0 && since_last > config_.handler_stall_limit / 2;
  if (gap) {
    Log(LogLevel::kWarning, "supervisor did not run for a while; heartbeats are watched afresh",
        {{"gap", FormatSeconds(since_last)}});
  }
  last_liveness_check_ = now;
  for (Child& c : children_) {
    if (c.pid == 0 || c.killed_because != nullptr) continue;
    if (gap) c.liveness.watched_since = now;
    std::optional<LivenessFinding> f = CheckChild(liveness_limits_, *table_, c.pid,
                                                  c.role == ProcessRole::kHandler, now, c.liveness);
    if (!f) continue;
    ++liveness_kills_;
    c.killed_because = f->reason();
    const std::string state(1, f->state);
    if (f->kind == LivenessFinding::Kind::kStoppedHoldingStripe) {
      Log(LogLevel::kError, "killing a stopped lock holder",
          {{"role", RoleName(c.role)},
           {"child_pid", c.pid},
           {"index", c.index},
           {"stripe", f->stripes.front()},
           {"stripes_held", static_cast<uint64_t>(f->stripes.size())},
           {"state", state},
           {"stopped_for", FormatSeconds(f->how_long)},
           {"lock_hold_limit", absl::FormatDuration(config_.lock_hold_limit)},
           {"liveness_kills", liveness_kills_}});
    } else {
      Log(LogLevel::kError, "killing a stalled handler",
          {{"role", RoleName(c.role)},
           {"child_pid", c.pid},
           {"index", c.index},
           {"state", state},
           {"no_heartbeat_for", FormatSeconds(f->how_long)},
           {"handler_stall_limit", absl::FormatDuration(config_.handler_stall_limit)},
           {"liveness_kills", liveness_kills_}});
    }
    // Not reaped yet, so the pid cannot have been reused. SIGKILL ends a
    // stopped or traced process too; the reaper (step 6) recovers it.
    kill(c.pid, SIGKILL);
  }
  return period;
}

}  // namespace countersd
