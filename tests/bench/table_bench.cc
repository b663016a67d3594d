// Microbenchmarks of the shared-memory table's increment path, next to a
// bare std::atomic fetch_add, plus what a handler adds to each call for its
// metrics (BM_RecordCall*), snapshot pauses, List pages and open time.
//
//   build/tests/bench/table_bench
//   build/tests/bench/table_bench --benchmark_filter=Process
//   build/tests/bench/table_bench --help
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "shared/counter_table.h"
#include "shared/stats_area.h"
#include "tests/tool_flags.h"

namespace countersd {
namespace {

// A temporary directory for the run's table files (hundreds of MB for the
// big tables), removed when the program exits.
std::string* g_temp_dir = nullptr;
void RemoveTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(*g_temp_dir, ec);
}

std::string TempPath(const std::string& name) {
  static std::string dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "countersd-bench-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) abort();
    g_temp_dir = new std::string(tmpl);
    std::atexit(RemoveTempDir);
    return tmpl;
  }();
  std::filesystem::remove(dir + "/" + name);
  return dir + "/" + name;
}

std::unique_ptr<CounterTable> NewTable(uint64_t capacity, const std::string& name = "b.map") {
  auto t = CounterTable::Create(TempPath(name), capacity);
  if (!t.ok()) abort();
  return std::move(*t);
}

void BM_AtomicFetchAdd(benchmark::State& state) {
  static std::atomic<int64_t> counter{0};
  for (auto _ : state) benchmark::DoNotOptimize(counter.fetch_add(1));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AtomicFetchAdd);

void BM_IncrementHotKey(benchmark::State& state) {
  auto t = NewTable(100000);
  for (auto _ : state) benchmark::DoNotOptimize(t->Increment("requests:/api/v1/items", 1));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IncrementHotKey);

// A handler's metrics per call (shared/stats_area.h): the relaxed adds to
// its own stats row (a request count, a latency bucket, the latency sum)...
void BM_RecordCall(benchmark::State& state) {
  absl::StatusOr<StatsArea> area = StatsArea::Create();
  if (!area.ok()) abort();
  int64_t ns = 0;
  for (auto _ : state) {
    StatsArea::RecordCall(area->row(0), 0, 0, ns);
    ns = (ns + 7919) & 0xfffff;  // latencies across the first buckets
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordCall);

// ...with the two CLOCK_MONOTONIC reads that time the call
// (CounterServiceImpl::CallStart, CountCall)...
void BM_RecordCallTimed(benchmark::State& state) {
  absl::StatusOr<StatsArea> area = StatsArea::Create();
  if (!area.ok()) abort();
  for (auto _ : state) {
    const int64_t start = StatsArea::Now();
    StatsArea::RecordCall(area->row(0), 0, 0, StatsArea::Now() - start);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordCallTimed);

// ...and around an increment, to set beside BM_IncrementHotKey.
void BM_IncrementHotKeyRecorded(benchmark::State& state) {
  auto t = NewTable(100000);
  absl::StatusOr<StatsArea> area = StatsArea::Create();
  if (!area.ok()) abort();
  for (auto _ : state) {
    const int64_t start = StatsArea::Now();
    benchmark::DoNotOptimize(t->Increment("requests:/api/v1/items", 1));
    StatsArea::RecordCall(area->row(0), 0, 0, StatsArea::Now() - start);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IncrementHotKeyRecorded);

void BM_IncrementSpreadKeys(benchmark::State& state) {
  auto t = NewTable(100000);
  std::vector<std::string> keys;
  for (int i = 0; i < state.range(0); ++i) keys.push_back(absl::StrCat("key:", i));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(t->Increment(keys[i], 1));
    if (++i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IncrementSpreadKeys)->Arg(1000)->Arg(65536);

void BM_GetHotKey(benchmark::State& state) {
  auto t = NewTable(100000);
  (void)t->Increment("requests:/api/v1/items", 1);
  for (auto _ : state) benchmark::DoNotOptimize(t->Get("requests:/api/v1/items"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetHotKey);

void BM_IncrementBatch100(benchmark::State& state) {
  auto t = NewTable(100000);
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) keys.push_back(absl::StrCat("key:", i));
  std::vector<CounterTable::KeyDelta> ops;
  for (auto& k : keys) ops.push_back({k, 1});
  for (auto _ : state) benchmark::DoNotOptimize(t->IncrementBatch(ops));
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_IncrementBatch100);

// `procs` processes each increment their own key `n` times; keys on the same
// stripe or on different ones. Wall time of the whole run is the iteration
// time, so items/s is the aggregate rate.
void RunProcesses(benchmark::State& state, int procs, bool same_stripe) {
  constexpr int64_t kPerProcess = 3'000'000;
  auto t = NewTable(100000);
  std::vector<std::string> keys = {"proc-key-0"};
  for (int i = 1; keys.size() < static_cast<size_t>(procs); ++i) {
    std::string k = absl::StrCat("proc-key-", i);
    bool same = t->StripeOf(k) == t->StripeOf(keys[0]);
    if (same == same_stripe) keys.push_back(k);
  }
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    std::vector<pid_t> kids;
    for (int p = 0; p < procs; ++p) {
      pid_t pid = fork();
      if (pid == 0) {
        for (int64_t i = 0; i < kPerProcess; ++i) {
          if (!t->Increment(keys[p], 1).ok()) _exit(1);
        }
        _exit(0);
      }
      kids.push_back(pid);
    }
    for (pid_t k : kids) {
      int status = 0;
      if (waitpid(k, &status, 0) != k || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        state.SkipWithError("an incrementing process failed");
      }
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(state.iterations() * procs * kPerProcess);
}

void BM_OneProcess(benchmark::State& state) { RunProcesses(state, 1, false); }
void BM_TwoProcessesDifferentStripes(benchmark::State& state) { RunProcesses(state, 2, false); }
void BM_TwoProcessesSameStripe(benchmark::State& state) { RunProcesses(state, 2, true); }
BENCHMARK(BM_OneProcess)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoProcessesDifferentStripes)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TwoProcessesSameStripe)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

// A snapshot's copy of a table holding `range(0)` counters, with a writer
// process hammering it; reports the longest stop increments saw.
void BM_SnapshotPause(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto t = NewTable(n + n / 4);
  std::vector<std::string> keys;
  for (int64_t i = 0; i < n; ++i) (void)t->Increment(absl::StrCat("counter:", i), i);
  uint64_t max_pause = 0;
  uint64_t counted = 0;
  for (auto _ : state) {
    max_pause =
        std::max(max_pause, t->SnapshotForEach([&](std::string_view, int64_t) { ++counted; }));
  }
  state.counters["max_pause_us"] = max_pause / 1000.0;
  state.counters["counters"] =
      static_cast<double>(counted) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_SnapshotPause)->Arg(65536)->Arg(1000000)->Unit(benchmark::kMillisecond);

// A List page as the List RPC asks for it (CounterServiceImpl::DoList: 101
// keys, the next page after the 100th), over 20,000 counters in a
// 1,000,000-capacity table (1,024 regions), paging through the whole table
// and starting over. range(0) = 1: each page continues the previous one, so
// it resumes the saved merge (sorted_key_index.cc, step 2); 0: each page
// starts after the token + "\x01" (no key lies between: control characters
// are not allowed in keys), which no saved merge matches, so every region
// is sought, as before the merges were saved.
void BM_ListPage(benchmark::State& state) {
  const bool resume = state.range(0) == 1;
  auto t = NewTable(1000000, "list.map");
  for (int i = 0; i < 20000; ++i) (void)t->Increment(absl::StrCat("k/", i), i);
  std::string token;
  for (auto _ : state) {
    std::vector<Counter> page = t->List("", resume || token.empty() ? token : token + "\x01", 101);
    token = page.size() == 101 ? page[99].key : "";
    benchmark::DoNotOptimize(page);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_ListPage)->ArgName("resume")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// Startup: Open (validate, repair, re-init locks) of a 1,000,000-counter
// table that is full of counters.
void BM_OpenMillionCounterTable(benchmark::State& state) {
  const std::string path = TempPath("open.map");
  {
    auto t = CounterTable::Create(path, 1000000);
    for (int i = 0; i < 1000000; ++i) (void)(*t)->Increment(absl::StrCat("counter:", i), 1);
  }
  for (auto _ : state) {
    auto t = CounterTable::Open(path);
    if (!t.ok()) state.SkipWithError(std::string(t.status().message()).c_str());
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_OpenMillionCounterTable)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace countersd

// BENCHMARK_MAIN, with the tools' flag parser in front: the program has no
// flags of its own, and Google Benchmark parses its --benchmark_* ones.
int main(int argc, char** argv) {
  countersd::testing::ToolFlags flags(
      "table_bench", "Microbenchmarks of the shared-memory table (Google Benchmark).");
  flags.PassThrough("benchmark_",
                    "Google Benchmark's flags: --benchmark_filter=REGEX, "
                    "--benchmark_format=json, ...");
  flags.Parse(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
