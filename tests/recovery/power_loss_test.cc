// Power loss at every crash point of a scripted workload (issue 10).
//
// Each stage runs a workload of increments, batches, Snapshot calls,
// restarts, a restore after a power loss and a restore at a larger capacity
// on the real table, snapshot writer and start-up recovery, in this process,
// through a PowerLossSys (tests/shared/power_loss_sys.h: the model and its
// assumptions). At every crash point it builds the crash images the model
// allows there (a seeded sample where the space is too big: CrashChoicesFor),
// writes each into a fresh directory, and runs start-up recovery on it
// (SelectAndOpenTable, then SnapshotWriter::Open and one Write, as the
// daemon would) in a forked child, with a new boot id. The child checks:
//  1. It opens, or refuses cleanly: FAILED_PRECONDITION with a message, and
//     only while no Snapshot has completed in this data directory. Any other
//     error, or a crash of the child, is a failure.
//  2. What it serves is the table as it was at some instant between the
//     point-in-time copy of the last completed Snapshot and the crash point
//     (a Snapshot in progress may have become durable): so it holds every
//     increment acknowledged before the last completed Snapshot call, and
//     nothing that was never acknowledged. The workload is single-threaded,
//     so those instants are exactly its step boundaries.
//  3. Never half a batch: each batch adds one delta to every key of a
//     group, so a group's keys are all present and equal, or all absent.
//  4. A file of the image that is not served is kept aside: still linked,
//     under its name or <name>.corrupt-* / counters.map.untrusted-*, byte
//     for byte (only counters.map.restoring, an unfinished restore of ours,
//     may be removed).
//  5. After an OK start the snapshot writer opens and writes a snapshot.
// Identical images (by a 64-bit hash) with the same expectation are
// recovered once.
//
// Bounded in time: a stage has some twenty crash points (its steps and the
// calls inside them), each with a few to a few dozen images, some 100-160
// distinct ones per stage, a few ms each (a few seconds per stage; about
// five times that under ASan and a load of 10 on 2 cores). POWER_LOSS_SEED and
// POWER_LOSS_IMAGES (random images per crash point) override the defaults;
// POWER_LOSS_SHOWN is how many failing images a stage describes (3).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "server/group_commit.h"
#include "server/snapshot_writer.h"
#include "server/table_selection.h"
#include "shared/counter_table.h"
#include "shared/data_dir.h"
#include "shared/status_macros.h"
#include "tests/shared/power_loss_sys.h"

namespace countersd::testing {
namespace {

using State = std::map<std::string, int64_t>;

constexpr uint64_t kDefaultSeed = 20261202;
constexpr int kDefaultRandomImages = 6;
constexpr int kBatchKeys = 5;  // keys per batch group
constexpr int kDefaultFailuresShown = 3;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

// Boot ids fit the 40-byte fields of the map and the snapshot meta.
std::string BootIdFor(std::string_view who, int n) {
  return absl::StrFormat("power-loss-%s-%d", who, n);
}

std::string CounterKey(int i) { return absl::StrFormat("power-loss/counter-%03d", i); }
std::string BatchKey(int group, int j) {
  return absl::StrFormat("power-loss/batch-%02d/key-%d", group, j);
}

std::string Describe(const State& s) {
  return absl::StrCat(s.size(), " counters, sum ", [&] {
    int64_t sum = 0;
    for (const auto& [k, v] : s) sum += v;
    return sum;
  }());
}

// What differs between `got` and `want`, at most a few keys.
std::string Diff(const State& got, const State& want) {
  std::vector<std::string> d;
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) {
      d.push_back(absl::StrCat(k, " missing (want ", v, ")"));
    } else if (it->second != v) {
      d.push_back(absl::StrCat(k, "=", it->second, " (want ", v, ")"));
    }
  }
  for (const auto& [k, v] : got) {
    if (!want.count(k)) d.push_back(absl::StrCat(k, "=", v, " (want absent)"));
  }
  const size_t n = d.size();
  if (n > 4) d.resize(4);
  return absl::StrCat(absl::StrJoin(d, ", "), n > 4 ? absl::StrCat(" and ", n - 4, " more") : "");
}

State ReadTable(const CounterTable& table) {
  State s;
  table.ForEach([&s](std::string_view k, int64_t v) { s[std::string(k)] = v; });
  return s;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What recovery may produce after a power loss at the current crash point.
struct Expected {
  // The table at each step boundary since the point-in-time copy of the
  // last completed Snapshot (since the start, if none completed).
  std::vector<State> states;
  bool snapshot_completed = false;
  uint64_t capacity = 0;  // the --capacity the restart is given
};

// Check 3: every batch group is whole.
std::string HalfBatches(const State& got) {
  std::map<std::string, std::vector<int64_t>> groups;
  for (const auto& [k, v] : got) {
    const size_t slash = k.rfind("/key-");
    if (k.rfind("power-loss/batch-", 0) == 0 && slash != std::string::npos) {
      groups[k.substr(0, slash)].push_back(v);
    }
  }
  std::vector<std::string> bad;
  for (const auto& [g, vs] : groups) {
    if (vs.size() != kBatchKeys || std::count(vs.begin(), vs.end(), vs[0]) != kBatchKeys) {
      bad.push_back(absl::StrCat(g, " holds {", absl::StrJoin(vs, ","), "} over ", vs.size(),
                                 " of its ", kBatchKeys, " keys"));
    }
  }
  return bad.empty() ? "" : absl::StrCat("half a batch: ", absl::StrJoin(bad, "; "));
}

// Check 4, after recovery ran on `dir` holding `image` (whose files had
// the inodes `before`). `served_map`: recovery returned a table, so
// counters.map may have been rewritten in place.
std::vector<std::string> KeptAside(const std::string& dir, const CrashImage& image,
                                   const std::map<std::string, ino_t>& before, bool served_map) {
  std::map<ino_t, std::string> after;
  std::error_code ec;  // no exception in the child: a throw would read as a crash
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    struct stat st;
    if (::lstat(e.path().c_str(), &st) == 0) after[st.st_ino] = e.path().filename().string();
  }
  std::vector<std::string> problems;
  for (const auto& [name, bytes] : image) {
    if (name == kRestoringFile) continue;  // ours, never served: removing it is right
    auto it = after.find(before.at(name));
    if (it == after.end()) {
      problems.push_back(absl::StrCat(name, " was deleted, not kept aside"));
      continue;
    }
    const std::string& now = it->second;
    const bool aside =
        now.rfind(absl::StrCat(name, ".", kCorruptKind, "-"), 0) == 0 ||
        (name == kMapFile && now.rfind(absl::StrCat(name, ".", kUntrustedKind, "-"), 0) == 0);
    if (now != name && !aside) {
      problems.push_back(absl::StrCat(name, " was renamed to ", now, ", not a set-aside name"));
      continue;
    }
    if (now == kMapFile && served_map) continue;  // the table being served
    if (ReadFileOrEmpty(absl::StrCat(dir, "/", now)) != bytes) {
      problems.push_back(absl::StrCat(name, (now == name ? "" : absl::StrCat(" (now ", now, ")")),
                                      " was modified; a file not served must be kept as found"));
    }
  }
  return problems;
}

// Start-up recovery on the image in `dir`, and checks 1-5 (in the child).
std::string RecoverAndCheck(const std::string& dir, const CrashImage& image,
                            const Expected& expected) {
  std::map<std::string, ino_t> before;
  for (const auto& [name, bytes] : image) {
    struct stat st;
    if (::lstat(absl::StrCat(dir, "/", name).c_str(), &st) == 0) before[name] = st.st_ino;
  }
  RebootedSys sys(BootIdFor("check", 0));  // a boot no workload step ran in
  absl::StatusOr<std::unique_ptr<CounterTable>> table =
      SelectAndOpenTable({.data_dir = dir, .capacity = expected.capacity, .sys = &sys});
  std::vector<std::string> problems;
  if (!table.ok()) {
    if (table.status().code() != absl::StatusCode::kFailedPrecondition ||
        table.status().message().empty()) {
      problems.push_back(absl::StrCat("start-up failed with ", table.status().ToString(),
                                      ", not a clean refusal (FAILED_PRECONDITION)"));
    } else if (expected.snapshot_completed) {
      problems.push_back(absl::StrCat("refused to start although a Snapshot had completed: ",
                                      table.status().ToString()));
    }
  }
  for (std::string& p : KeptAside(dir, image, before, table.ok())) problems.push_back(p);
  if (table.ok()) {
    const State got = ReadTable(**table);
    if (std::string half = HalfBatches(got); !half.empty()) problems.push_back(half);
    if (std::find(expected.states.begin(), expected.states.end(), got) == expected.states.end()) {
      problems.push_back(absl::StrCat(
          "served ", Describe(got),
          ", which is the table at no instant since the last completed Snapshot (",
          expected.snapshot_completed ? "" : "none completed; ",
          "that one: ", Describe(expected.states.front()),
          "; the crash point: ", Describe(expected.states.back()),
          "); against the last completed Snapshot: ", Diff(got, expected.states.front())));
    }
    absl::StatusOr<std::unique_ptr<SnapshotWriter>> writer =
        SnapshotWriter::Open(table->get(), dir, &sys);
    if (!writer.ok()) {
      problems.push_back(absl::StrCat("the snapshot writer cannot open after this start: ",
                                      writer.status().ToString()));
    } else if (absl::StatusOr<SnapshotMetaInfo> w = (*writer)->Write(); !w.ok()) {
      problems.push_back(
          absl::StrCat("the first snapshot after this start failed: ", w.status().ToString()));
    }
  }
  return absl::StrJoin(problems, "; ");
}

// One stage's workload, its crash points and what they found.
class PowerLossRun {
 public:
  explicit PowerLossRun(std::string stage)
      : stage_(std::move(stage)),
        seed_(EnvOr("POWER_LOSS_SEED", kDefaultSeed)),
        random_images_(static_cast<int>(EnvOr("POWER_LOSS_IMAGES", kDefaultRandomImages))),
        failures_shown_(static_cast<int>(EnvOr("POWER_LOSS_SHOWN", kDefaultFailuresShown))) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "countersd-power-loss-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
      broken_ = true;
      return;
    }
    root_ = tmpl;
    if (absl::Status s = NewBoot(CrashImage{}); !s.ok()) Break(s.ToString());
    expected_.states = {State{}};
  }

  ~PowerLossRun() {
    commit_.reset();
    writer_.reset();
    table_.reset();
    sys_.reset();
    std::cout << "power-loss " << stage_ << ": " << crash_points_ << " crash points, "
              << images_built_ << " images built, " << images_checked_
              << " distinct images recovered, " << failures_ << " failing (seed " << seed_ << ", "
              << random_images_ << " random images per crash point)" << std::endl;
    if (!root_.empty()) std::filesystem::remove_all(root_);
  }

  int failures() const { return failures_; }
  int images_checked() const { return images_checked_; }

  // ---- The workload. Each step ends at a crash point. ----

  // Start-up (SelectAndOpenTable) with --capacity=`capacity`, then the
  // snapshot writer, as the supervisor and the aggregator do.
  void Start(uint64_t capacity) {
    if (broken_) return;
    expected_.capacity = capacity;
    absl::StatusOr<std::unique_ptr<CounterTable>> t =
        SelectAndOpenTable({.data_dir = dir_, .capacity = capacity, .sys = sys_.get()});
    if (!t.ok()) return Break(absl::StrCat("start-up: ", t.status().ToString()));
    table_ = std::move(*t);
    const State got = ReadTable(*table_);
    if (got != model_) {
      return Break(absl::StrCat("the workload's own start served ", Describe(got), ", expected ",
                                Describe(model_), ": ", Diff(got, model_)));
    }
    absl::StatusOr<std::unique_ptr<SnapshotWriter>> w =
        SnapshotWriter::Open(table_.get(), dir_, sys_.get());
    if (!w.ok()) return Break(absl::StrCat("SnapshotWriter::Open: ", w.status().ToString()));
    writer_ = std::move(*w);
    Step(absl::StrCat("start with capacity ", capacity));
  }

  // Increments counters 0..n-1 by `delta`.
  void Increments(int n, int64_t delta) {
    if (broken_) return;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<int64_t> v = table_->Increment(CounterKey(i), delta);
      if (!v.ok()) return Break(absl::StrCat("Increment: ", v.status().ToString()));
      model_[CounterKey(i)] += delta;
    }
    Mutated(absl::StrCat(n, " increments by ", delta));
  }

  // One batch adding `delta` to every key of `group`.
  void Batch(int group, int64_t delta) {
    if (broken_) return;
    std::vector<std::string> keys;
    std::vector<CounterTable::KeyDelta> ops;
    for (int j = 0; j < kBatchKeys; ++j) keys.push_back(BatchKey(group, j));
    for (const std::string& k : keys) ops.push_back({k, delta});
    absl::StatusOr<std::vector<int64_t>> v = table_->IncrementBatch(ops);
    if (!v.ok()) return Break(absl::StrCat("IncrementBatch: ", v.status().ToString()));
    for (const std::string& k : keys) model_[k] += delta;
    Mutated(absl::StrCat("batch ", group, " by ", delta));
  }

  // Durable writes (WriteOptions.durable): applied to the table, logged
  // through a handler's GroupCommit on the same Sys, acknowledged once its
  // sync returned. From the acknowledgement on, every image must hold the
  // write: the stages make only durable writes after their last snapshot,
  // so the states allowed are those from the last acknowledgement on.
  void DurableIncrements(int n, int64_t delta) {
    for (int i = 0; i < n && !broken_; ++i) {
      const std::string key = CounterKey(i);
      DurableWrite({{key, delta}}, absl::StrCat("durable increment of ", key));
    }
  }

  void DurableBatch(int group, int64_t delta) {
    std::vector<std::pair<std::string, int64_t>> ops;
    for (int j = 0; j < kBatchKeys; ++j) ops.emplace_back(BatchKey(group, j), delta);
    DurableWrite(ops, absl::StrCat("durable batch ", group, " by ", delta));
  }

  // What the Snapshot RPC waits for: one SnapshotWriter::Write.
  void Snapshot() {
    if (broken_) return;
    absl::StatusOr<SnapshotMetaInfo> m = writer_->Write();
    if (!m.ok()) return Break(absl::StrCat("Snapshot: ", m.status().ToString()));
    // Completed: its point-in-time copy is the table now (one thread).
    expected_.states = {model_};
    expected_.snapshot_completed = true;
    ++timeline_;
    Step(absl::StrCat("snapshot generation ", m->generation));
  }

  // SIGTERM: the final snapshot, the clean-shutdown mark, every process gone.
  void StopCleanly() {
    if (broken_) return;
    commit_.reset();
    Snapshot();
    if (broken_) return;
    if (absl::Status s = table_->MarkCleanShutdown(); !s.ok()) {
      return Break(absl::StrCat("MarkCleanShutdown: ", s.ToString()));
    }
    writer_.reset();
    table_.reset();
    Step("clean shutdown");
  }

  // The host loses power: every process dies with it, and the next boot
  // finds what was durable (nothing since the last flushes, the directory
  // as of its last fsync), in the same place, with a new boot id.
  void PowerLoss() {
    if (broken_) return;
    commit_.reset();
    writer_.reset();
    table_.reset();
    const CrashState state = sys_->Capture();
    const CrashImage image = Materialize(state, CrashChoice{});
    if (absl::Status s = NewBoot(image); !s.ok()) return Break(s.ToString());
    model_ = expected_.states.front();  // the last completed Snapshot
    expected_.states = {model_};
    ++timeline_;
  }

  // The setup before a stage's subject: taken as on disk, so that the
  // stage's crash points test its own steps.
  void TakeAllAsDurable() {
    if (!broken_) sys_->TakeAllAsDurable();
  }

  void EnableCrashPoints() {
    crash_points_enabled_ = true;
    InstallHandler();
  }

 private:
  void DurableWrite(const std::vector<std::pair<std::string, int64_t>>& adds,
                    const std::string& what) {
    if (broken_) return;
    if (commit_ == nullptr) {
      absl::StatusOr<std::unique_ptr<GroupCommit>> gc =
          GroupCommit::Start(table_.get(), dir_, 0, nullptr, sys_.get());
      if (!gc.ok()) return Break(absl::StrCat("GroupCommit::Start: ", gc.status().ToString()));
      commit_ = *std::move(gc);
    }
    std::vector<CounterTable::KeyDelta> ops;
    WalRecord record;
    for (const auto& [key, delta] : adds) {
      ops.push_back({key, delta});
      record.ops.push_back(WalOp{WalOp::kAdd, key, delta});
    }
    WriteControl control;
    control.durable = true;
    absl::StatusOr<WriteResponse> r = table_->IncrementBatch(ops, control);
    if (!r.ok()) return Break(absl::StrCat("durable IncrementBatch: ", r.status().ToString()));
    for (const auto& [key, delta] : adds) model_[key] += delta;
    expected_.states.push_back(model_);  // applied, not yet acknowledged
    record.lsn = r->lsn;
    std::promise<absl::Status> synced;
    commit_->Append(record, [&synced](absl::Status st) { synced.set_value(std::move(st)); });
    if (absl::Status st = synced.get_future().get(); !st.ok()) {
      return Break(absl::StrCat("durable write's sync: ", st.ToString()));
    }
    expected_.states = {model_};  // acknowledged: no image may lose it
    ++timeline_;
    Step(what);
  }

  void Break(const std::string& why) {
    ADD_FAILURE() << stage_ << ": the workload itself failed: " << why;
    broken_ = true;
  }

  void Mutated(const std::string& step) {
    expected_.states.push_back(model_);
    Step(step);
  }

  void Step(const std::string& what) { sys_->CrashPoint(absl::StrCat("after ", what)); }

  // A new boot: a new directory holding `image`, a new boot id.
  absl::Status NewBoot(const CrashImage& image) {
    dir_ = absl::StrCat(root_, "/boot-", boots_);
    std::filesystem::create_directory(dir_);
    RETURN_IF_ERROR(WriteCrashImage(image, dir_));
    sys_ = std::make_unique<PowerLossSys>(dir_, BootIdFor("boot", boots_));
    ++boots_;
    InstallHandler();
    return absl::OkStatus();
  }

  void InstallHandler() {
    if (crash_points_enabled_) {
      sys_->SetCrashPointHandler([this](std::string_view where) { OnCrashPoint(where); });
    }
  }

  void OnCrashPoint(std::string_view where) {
    ++crash_points_;
    const CrashState state = sys_->Capture();
    if (!state.inconsistency.empty()) {
      ADD_FAILURE() << stage_ << ": at " << where << ": " << state.inconsistency;
    }
    const std::vector<CrashChoice> choices =
        CrashChoicesFor(state, seed_ * 1000003 + crash_points_, random_images_);
    for (const CrashChoice& choice : choices) {
      const CrashImage image = Materialize(state, choice);
      ++images_built_;
      size_t h = std::hash<uint64_t>{}(timeline_);
      for (const auto& [name, bytes] : image) {
        h = h * 31 + std::hash<std::string>{}(name);
        h = h * 31 + std::hash<std::string>{}(bytes);
      }
      if (!seen_.insert(h).second) continue;
      ++images_checked_;
      const std::string verdict = RecoverInChild(image);
      if (verdict.empty()) continue;
      if (++failures_ <= failures_shown_) {
        ADD_FAILURE() << stage_ << ": power loss at crash point " << crash_points_ << " (" << where
                      << "), image: " << choice.Describe(state) << "\n  => " << verdict;
      }
    }
  }

  // Runs RecoverAndCheck in a child, so that a crash of recovery is a
  // finding and not the end of the test. Returns "" when every check held.
  std::string RecoverInChild(const CrashImage& image) {
    const std::string dir = absl::StrCat(root_, "/image-", images_checked_);
    const std::string verdict_path = dir + ".verdict", log_path = dir + ".log";
    std::filesystem::create_directory(dir);
    if (absl::Status s = WriteCrashImage(image, dir); !s.ok()) return s.ToString();
    std::cout.flush();
    const pid_t pid = fork();
    if (pid == 0) {
      int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (log >= 0) ::dup2(log, STDERR_FILENO);  // recovery's log lines
      const std::string verdict = RecoverAndCheck(dir, image, expected_);
      std::ofstream(verdict_path, std::ios::binary) << verdict;
      _exit(0);
    }
    int status = 0;
    std::string verdict;
    if (pid < 0) {
      verdict = absl::StrCat("fork: ", std::strerror(errno));
    } else if (::waitpid(pid, &status, 0) != pid) {
      verdict = absl::StrCat("waitpid: ", std::strerror(errno));
    } else if (WIFSIGNALED(status)) {
      verdict = absl::StrCat("start-up recovery crashed: ", strsignal(WTERMSIG(status)));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      verdict = absl::StrCat("start-up recovery exited with status ", WEXITSTATUS(status));
    } else {
      verdict = ReadFileOrEmpty(verdict_path);
    }
    if (!verdict.empty()) {
      std::string log = ReadFileOrEmpty(log_path);
      if (log.size() > 3000) log = "..." + log.substr(log.size() - 3000);
      absl::StrAppend(&verdict, "\n  recovery's log:\n", log);
    }
    std::filesystem::remove_all(dir);
    std::filesystem::remove(verdict_path);
    std::filesystem::remove(log_path);
    return verdict;
  }

  const std::string stage_;
  const uint64_t seed_;
  const int random_images_;
  const int failures_shown_;
  std::string root_;
  std::string dir_;  // this boot's data directory
  int boots_ = 0;
  std::unique_ptr<PowerLossSys> sys_;
  std::unique_ptr<CounterTable> table_;
  std::unique_ptr<SnapshotWriter> writer_;
  std::unique_ptr<GroupCommit> commit_;  // a handler's log of durable writes, once used
  State model_;  // every acknowledged change
  Expected expected_;
  uint64_t timeline_ = 0;  // bumped when expected_.states restarts
  bool crash_points_enabled_ = false;
  bool broken_ = false;
  std::set<size_t> seen_;  // images (and timelines) already recovered
  int crash_points_ = 0;
  int images_built_ = 0;
  int images_checked_ = 0;
  int failures_ = 0;
};

// A steady daemon's directory: one snapshot taken, everything on disk.
void SetUpSteadyDirectory(PowerLossRun& run, uint64_t capacity) {
  run.Start(capacity);
  run.Increments(20, 1);
  run.Batch(0, 1);
  run.Snapshot();
  run.TakeAllAsDurable();
}

// The first start in an empty directory: the map and counters.snap are
// created, then increments, batches and the first snapshots.
TEST(PowerLossTest, FirstStartThenIncrementsBatchesAndSnapshots) {
  PowerLossRun run("first start");
  run.EnableCrashPoints();
  run.Start(256);
  run.Increments(40, 1);
  run.Batch(0, 3);
  run.Snapshot();
  run.Increments(40, 2);
  run.Batch(1, 5);
  run.Snapshot();
  run.Increments(10, 1);
  EXPECT_GT(run.images_checked(), 0);
  EXPECT_EQ(run.failures(), 0);
}

// Durable writes (issue 16): after a snapshot, only durable increments and
// batches, each acknowledged once its log record is synced; a power loss
// at any point keeps every acknowledged one (the restart restores the
// snapshot and replays the log), never half a batch, nothing twice; then a
// snapshot covers the log, more durable writes, a power loss and a restore.
TEST(PowerLossTest, DurableWritesSurviveEveryPowerLoss) {
  PowerLossRun run("durable writes");
  SetUpSteadyDirectory(run, 256);
  run.EnableCrashPoints();
  run.DurableIncrements(2, 2);
  run.DurableBatch(1, 3);
  run.Snapshot();
  run.DurableIncrements(2, 5);
  run.DurableBatch(0, 1);
  // Only what was synced survives this one: the durable writes since the
  // snapshot are in the log alone.
  run.PowerLoss();
  run.Start(256);
  run.DurableIncrements(1, 7);
  EXPECT_GT(run.images_checked(), 0);
  EXPECT_EQ(run.failures(), 0);
}

// Steady state: many keys (snapshots of several pages), both halves of the
// snapshot file written in turn, a snapshot of an unchanged table.
TEST(PowerLossTest, IncrementsBatchesAndSnapshots) {
  PowerLossRun run("steady state");
  SetUpSteadyDirectory(run, 256);
  run.EnableCrashPoints();
  run.Increments(200, 1);
  run.Batch(0, 7);
  run.Snapshot();
  run.Batch(1, 2);
  run.Increments(200, 3);
  run.Batch(0, 1);
  run.Snapshot();
  run.Snapshot();
  run.Increments(50, 3);
  run.Batch(2, 4);
  run.Snapshot();
  run.Increments(10, 1);
  EXPECT_GT(run.images_checked(), 0);
  EXPECT_EQ(run.failures(), 0);
}

// A power loss, then the restore at the same capacity (the untrusted map set
// aside, counters.map.restoring built and renamed), and the daemon going on.
TEST(PowerLossTest, RestoreAfterPowerLossThenGoOn) {
  PowerLossRun run("restore");
  SetUpSteadyDirectory(run, 256);
  run.Increments(100, 2);
  run.Batch(1, 1);
  run.Snapshot();
  run.Increments(30, 5);  // lost with the power: after the last Snapshot
  run.Batch(0, 1);
  run.TakeAllAsDurable();
  run.EnableCrashPoints();
  run.PowerLoss();
  run.Start(256);
  run.Increments(100, 1);
  run.Batch(2, 3);
  run.Snapshot();
  run.Increments(20, 1);
  run.Snapshot();
  EXPECT_GT(run.images_checked(), 0);
  EXPECT_EQ(run.failures(), 0);
}

// A power loss, then a restart with a larger --capacity: the restore grows
// the table, and more counters than the old capacity are created.
TEST(PowerLossTest, RestoreAtLargerCapacityThenGrow) {
  PowerLossRun run("growth");
  SetUpSteadyDirectory(run, 64);
  run.Increments(50, 1);
  run.Snapshot();
  run.EnableCrashPoints();
  run.PowerLoss();
  run.Start(512);
  run.Increments(300, 1);
  run.Batch(1, 2);
  run.Snapshot();
  run.Increments(300, 1);
  run.Snapshot();
  EXPECT_GT(run.images_checked(), 0);
  EXPECT_EQ(run.failures(), 0);
}

// A clean shutdown and a restart on the same boot (the map trusted), then
// the daemon going on; a power loss at any point after.
TEST(PowerLossTest, CleanRestartThenIncrementsAndSnapshots) {
  PowerLossRun run("clean restart");
  SetUpSteadyDirectory(run, 256);
  run.EnableCrashPoints();
  run.Increments(50, 2);
  run.StopCleanly();
  run.Start(256);
  run.Increments(60, 1);
  run.Batch(0, 2);
  run.Snapshot();
  run.Increments(10, 1);
  EXPECT_GT(run.images_checked(), 0);
  EXPECT_EQ(run.failures(), 0);
}

}  // namespace
}  // namespace countersd::testing
