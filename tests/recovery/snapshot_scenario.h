// A deterministic history for snapshot-recovery tests: phases of increments
// separated by Snapshot calls, ending with an unclean stop (SIGKILL of the
// whole daemon) after more increments than the last snapshot holds.
//
//   phase 0, Snapshot #0, phase 1, Snapshot #1, ..., phase N, KillAll
//
// Phase p adds p*100 + j + 1 to "recovery/j" (j < kScenarioKeys) and creates
// "recovery/phase<p>". The daemon runs with periodic snapshots effectively
// off (a one-hour interval), so the only snapshots taken after the first
// increment are the Snapshot calls: restoring snapshot #s must yield exactly
// the counters recorded for it, no more, no less.
#ifndef COUNTERSD_TESTS_RECOVERY_SNAPSHOT_SCENARIO_H_
#define COUNTERSD_TESTS_RECOVERY_SNAPSHOT_SCENARIO_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {

inline constexpr int kScenarioKeys = 20;
inline constexpr char kScenarioPrefix[] = "recovery/";

struct RecordedSnapshot {
  uint64_t generation = 0;                // as the Snapshot call returned it
  std::map<std::string, int64_t> values;  // every "recovery/" counter acknowledged before it
};

// Options for a daemon on `data_dir` with periodic snapshots off.
DaemonOptions ScenarioDaemonOptions(const std::string& data_dir);

// Runs the history above with `snapshots` Snapshot calls on a new daemon on
// `data_dir`, then SIGKILLs it. Returns what each snapshot holds, oldest
// first. Every call must succeed (nothing crashes during the history).
absl::StatusOr<std::vector<RecordedSnapshot>> RunHistoryAndKill(const std::string& data_dir,
                                                                int snapshots);

// The first log line that contains every one of `needles` ("" if none).
std::string FindLogLine(const std::string& log, const std::vector<std::string>& needles);

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_RECOVERY_SNAPSHOT_SCENARIO_H_
