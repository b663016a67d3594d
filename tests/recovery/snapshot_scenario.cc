#include "tests/recovery/snapshot_scenario.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/recovery/recovery_checks.h"

namespace countersd::testing {
namespace {

// Applies phase `p` and records the expected values in `values`.
absl::Status RunPhase(Stub& stub, int p, std::map<std::string, int64_t>& values) {
  for (int j = 0; j < kScenarioKeys; ++j) {
    std::string key = absl::StrCat(kScenarioPrefix, j);
    int64_t delta = p * 100 + j + 1;
    auto v = IncrementCounter(stub, key, delta);
    if (!v.ok()) return v.status();
    values[key] += delta;
    if (*v != values[key]) {
      return absl::InternalError(
          absl::StrCat("Increment(", key, ") returned ", *v, ", want ", values[key]));
    }
  }
  std::string key = absl::StrCat(kScenarioPrefix, "phase", p);
  auto v = IncrementCounter(stub, key, 7);
  if (!v.ok()) return v.status();
  values[key] = 7;
  return absl::OkStatus();
}

}  // namespace

DaemonOptions ScenarioDaemonOptions(const std::string& data_dir) {
  DaemonOptions options;
  options.handlers = 2;
  options.capacity = 10000;
  options.snapshot_interval = "1h";
  options.data_dir = data_dir;
  return options;
}

absl::StatusOr<std::vector<RecordedSnapshot>> RunHistoryAndKill(const std::string& data_dir,
                                                                int snapshots) {
  auto daemon = Daemon::Start(ScenarioDaemonOptions(data_dir));
  if (!daemon.ok()) return daemon.status();
  auto stub = NewStub((*daemon)->address());
  std::vector<RecordedSnapshot> recorded;
  std::map<std::string, int64_t> values;
  for (int p = 0; p <= snapshots; ++p) {
    absl::Status s = RunPhase(*stub, p, values);
    if (!s.ok()) return s;
    if (p == snapshots) break;
    auto snap = TakeSnapshot(*stub);
    if (!snap.ok()) return snap.status();
    if (snap->counters() != values.size()) {
      return absl::InternalError(
          absl::StrCat("Snapshot reports ", snap->counters(), " counters, want ", values.size()));
    }
    if (!recorded.empty() && snap->generation() <= recorded.back().generation) {
      return absl::InternalError(absl::StrCat("Snapshot generation ", snap->generation(), " after ",
                                              recorded.back().generation));
    }
    recorded.push_back({snap->generation(), values});
  }
  (*daemon)->KillAll();
  return recorded;
}

std::string FindLogLine(const std::string& log, const std::vector<std::string>& needles) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    bool all = true;
    for (const auto& n : needles) {
      if (line.find(n) == absl::string_view::npos) {
        all = false;
        break;
      }
    }
    if (all) return std::string(line);
  }
  return "";
}

}  // namespace countersd::testing
