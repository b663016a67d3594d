// soak: `make soak`, kept out of ctest and so out of CI. SOAK_SECONDS
// (default 600) of mixed load on a real daemon, with a handler SIGKILLed
// every 30 s and a Snapshot call every 5 s; the RSS of every process is
// sampled; the totals are checked exactly at the end. Exit 0 if every check
// held, 1 if one failed (each failure is printed), 2 if the daemon did not
// start.
//
// How it works:
//  1. The daemon starts from the e2e harness (tests/e2e/daemon_harness.h):
//     two handlers, a temporary data directory.
//  2. kLoadThreads client threads, each on its own connection, loop over a
//     mix of Increment (60%), IncrementBatch of 2 to 8 keys (15%), Get
//     (15%) and a paged List (10%). Each thread is the only writer of its
//     own kKeysPerThread keys ("soak/t<thread>/k<i>"); every thread also
//     increments one key they all share ("soak/hot"), so the handlers also
//     contend for one stripe.
//  3. Exactness. Increments are not idempotent, and a call that fails when
//     its handler is killed may or may not have been applied. So each key
//     keeps two sums: `acked` (deltas of calls that returned OK) and
//     `unknown` (deltas of calls that failed for any other reason). The
//     value must always lie in [acked, acked + unknown]: every acknowledged
//     increment is counted, nothing is counted twice, and nothing is
//     invented. A single writer per key makes this checkable at every
//     moment, not only at the end: every Get, every List entry and the value
//     every OK increment returns (which must be in [acked + delta, acked +
//     unknown + delta]) is checked against the key's range at that time.
//     The shared key is checked at the end only, against the sums over all
//     threads. No key is ever deleted, so every key acknowledged once must
//     be in every List.
//  4. Every 30 s one handler (by turns) is SIGKILLed; the supervisor
//     repairs what it held and respawns it. Every 5 s a Snapshot call.
//  5. Every 2 s /proc/<pid>/status (VmRSS, RssAnon) of the supervisor, each
//     handler, the aggregator and this client is sampled; roles come from
//     the supervisor's "started <role>" log lines.
//  6. At the end: the load stops, every key is read back (retrying until a
//     handler answers) and checked, a SIGTERM must stop the daemon with
//     exit 0, and the report prints per role the memory at the start, at
//     the end and the peak.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

constexpr int kLoadThreads = 4;
constexpr int kKeysPerThread = 64;
constexpr absl::Duration kKillEvery = absl::Seconds(30);
constexpr absl::Duration kSnapshotEvery = absl::Seconds(5);
constexpr absl::Duration kSampleEvery = absl::Seconds(2);
constexpr auto kCallDeadline = std::chrono::seconds(10);
const char kHotKey[] = "soak/hot";

using counters::v1::CounterService;

// Failures are printed as they happen and counted; the exit code is 1 if
// there was any.
std::atomic<int> g_failures{0};
std::mutex g_print_mu;
template <typename... Args>
void Fail(const Args&... args) {
  ++g_failures;
  std::lock_guard<std::mutex> lock(g_print_mu);
  std::fprintf(stderr, "soak: FAIL: %s\n", absl::StrCat(args...).c_str());
}
template <typename... Args>
void Say(const Args&... args) {
  std::lock_guard<std::mutex> lock(g_print_mu);
  std::printf("soak: %s\n", absl::StrCat(args...).c_str());
  std::fflush(stdout);
}

// What one key may hold: [acked, acked + unknown] (point 3 above).
struct KeyRange {
  int64_t acked = 0;
  int64_t unknown = 0;
  bool Holds(int64_t v) const { return v >= acked && v <= acked + unknown; }
  std::string Describe() const { return absl::StrCat("[", acked, ", ", acked + unknown, "]"); }
};

// A call that failed: counted by its code. What a client sees when the
// handler serving its call is killed (the connection breaks, or the call
// times out waiting on it) is expected; any other code is a failure of the
// run (the keys and deltas here are all valid, and the table is far from
// full). Increments count towards `unknown` either way.
struct CallCounts {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  void Failed(const char* rpc, const grpc::Status& st) {
    ++failed;
    switch (st.error_code()) {
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::CANCELLED:
      case grpc::StatusCode::DEADLINE_EXCEEDED:
      case grpc::StatusCode::UNKNOWN:
        break;
      default:
        Fail(rpc, " failed with code ", static_cast<int>(st.error_code()), ": ",
             st.error_message());
    }
    std::lock_guard<std::mutex> lock(mu);
    ++by_code[static_cast<int>(st.error_code())];
  }
  std::string Describe(const char* rpc) {
    std::lock_guard<std::mutex> lock(mu);
    std::string out = absl::StrCat(rpc, " ", ok.load(), " ok / ", failed.load(), " failed");
    for (auto& [code, n] : by_code) absl::StrAppend(&out, " (code ", code, ": ", n, ")");
    return out;
  }
  std::mutex mu;
  std::map<int, uint64_t> by_code;  // guarded by mu
};

struct Totals {
  CallCounts increments, batches, gets, lists, snapshots;
  std::atomic<int64_t> hot_acked{0}, hot_unknown{0};
};

void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(GrpcDeadlineAfter(absl::FromChrono(kCallDeadline)));
}

// One load thread: the only writer of its own keys (point 2).
class LoadThread {
 public:
  LoadThread(int index, const std::string& address, Totals* totals)
      : index_(index), address_(address), totals_(totals), rng_(1000 + index) {
    for (int i = 0; i < kKeysPerThread; ++i) keys_.push_back(absl::StrCat(prefix(), "k", i));
    ranges_.resize(kKeysPerThread);
    ever_acked_.resize(kKeysPerThread);
  }

  std::string prefix() const { return absl::StrCat("soak/t", index_, "/"); }

  void Run(const std::atomic<bool>* stop) {
    while (!stop->load()) {
      const int op = static_cast<int>(rng_() % 100);
      if (op < 60) {
        Increment();
      } else if (op < 75) {
        Batch();
      } else if (op < 90) {
        Get();
      } else {
        List();
      }
    }
  }

  // After the load stopped: every key read back until a handler answers.
  void FinalCheck() {
    for (int i = 0; i < kKeysPerThread; ++i) {
      std::optional<int64_t> v = ReadBack(keys_[i]);
      if (!v.has_value()) {
        if (ever_acked_[i]) Fail(keys_[i], " was acknowledged but is not found at the end");
        continue;
      }
      if (!ranges_[i].Holds(*v)) {
        Fail(keys_[i], " holds ", *v, " at the end, outside ", ranges_[i].Describe());
      }
      final_sum_ += *v;
    }
  }

  int64_t acked_sum() const {
    int64_t s = 0;
    for (const KeyRange& r : ranges_) s += r.acked;
    return s;
  }
  int64_t unknown_sum() const {
    int64_t s = 0;
    for (const KeyRange& r : ranges_) s += r.unknown;
    return s;
  }
  int64_t final_sum() const { return final_sum_; }

 private:
  CounterService::Stub* stub() {
    if (!stub_) stub_ = NewStubOnOwnConnection(address_);
    return stub_.get();
  }
  // A failed call may mean the handler behind this connection died: the
  // next call opens a new connection, which SO_REUSEPORT gives to a live
  // handler.
  void Reconnect() { stub_.reset(); }

  void Increment() {
    const int i = static_cast<int>(rng_() % kKeysPerThread);
    const int64_t delta = 1 + static_cast<int64_t>(rng_() % 10);
    const bool hot = rng_() % 4 == 0;
    const std::string& key = hot ? std::string(kHotKey) : keys_[i];
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    counters::v1::IncrementRequest req;
    req.set_key(key);
    req.set_delta(delta);
    counters::v1::IncrementResponse resp;
    const grpc::Status st = stub()->Increment(&ctx, req, &resp);
    if (!st.ok()) {
      totals_->increments.Failed("Increment", st);
      if (hot) {
        totals_->hot_unknown += delta;
      } else {
        ranges_[i].unknown += delta;
      }
      Reconnect();
      return;
    }
    ++totals_->increments.ok;
    if (hot) {
      totals_->hot_acked += delta;
      return;
    }
    KeyRange after = ranges_[i];
    after.acked += delta;
    if (!after.Holds(resp.value())) {
      Fail("Increment(", key, ", ", delta, ") returned ", resp.value(), ", outside ",
           after.Describe());
    }
    ranges_[i] = after;
    ever_acked_[i] = true;
  }

  void Batch() {
    std::vector<int> idx(kKeysPerThread);
    for (int i = 0; i < kKeysPerThread; ++i) idx[i] = i;
    std::shuffle(idx.begin(), idx.end(), rng_);
    idx.resize(2 + rng_() % 7);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    counters::v1::IncrementBatchRequest req;
    std::vector<int64_t> deltas;
    for (int i : idx) {
      auto* inc = req.add_increments();
      inc->set_key(keys_[i]);
      deltas.push_back(1 + static_cast<int64_t>(rng_() % 5));
      inc->set_delta(deltas.back());
    }
    counters::v1::IncrementBatchResponse resp;
    const grpc::Status st = stub()->IncrementBatch(&ctx, req, &resp);
    if (!st.ok()) {
      totals_->batches.Failed("IncrementBatch", st);
      for (size_t k = 0; k < idx.size(); ++k) ranges_[idx[k]].unknown += deltas[k];
      Reconnect();
      return;
    }
    ++totals_->batches.ok;
    if (resp.values_size() != static_cast<int>(idx.size())) {
      Fail("IncrementBatch of ", idx.size(), " keys returned ", resp.values_size(), " values");
      return;
    }
    for (size_t k = 0; k < idx.size(); ++k) {
      KeyRange after = ranges_[idx[k]];
      after.acked += deltas[k];
      if (!after.Holds(resp.values(static_cast<int>(k)))) {
        Fail("IncrementBatch: ", keys_[idx[k]], " returned ", resp.values(static_cast<int>(k)),
             ", outside ", after.Describe());
      }
      ranges_[idx[k]] = after;
      ever_acked_[idx[k]] = true;
    }
  }

  void Get() {
    const int i = static_cast<int>(rng_() % kKeysPerThread);
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    counters::v1::GetRequest req;
    req.set_key(keys_[i]);
    counters::v1::GetResponse resp;
    const grpc::Status st = stub()->Get(&ctx, req, &resp);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
      ++totals_->gets.ok;
      if (ever_acked_[i]) Fail("Get(", keys_[i], "): NOT_FOUND after an acknowledged increment");
      return;
    }
    if (!st.ok()) {
      totals_->gets.Failed("Get", st);
      Reconnect();
      return;
    }
    ++totals_->gets.ok;
    if (!ranges_[i].Holds(resp.value())) {
      Fail("Get(", keys_[i], ") = ", resp.value(), ", outside ", ranges_[i].Describe());
    }
  }

  // Pages through this thread's keys; checks each value, that no key comes
  // twice, and that no acknowledged key is missing.
  void List() {
    std::set<std::string> seen;
    std::string token;
    do {
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      counters::v1::ListRequest req;
      req.set_prefix(prefix());
      req.set_page_size(20);
      req.set_page_token(token);
      counters::v1::ListResponse resp;
      const grpc::Status st = stub()->List(&ctx, req, &resp);
      if (!st.ok()) {
        totals_->lists.Failed("List", st);
        Reconnect();
        return;
      }
      for (const counters::v1::Counter& c : resp.counters()) {
        if (!seen.insert(c.key()).second) Fail("List returned ", c.key(), " twice");
        const int i = KeyIndex(c.key());
        if (i < 0) {
          Fail("List returned a key this run never wrote: ", c.key());
        } else if (!ranges_[i].Holds(c.value())) {
          Fail("List: ", c.key(), " = ", c.value(), ", outside ", ranges_[i].Describe());
        }
      }
      token = resp.next_page_token();
    } while (!token.empty());
    ++totals_->lists.ok;
    for (int i = 0; i < kKeysPerThread; ++i) {
      if (ever_acked_[i] && !seen.count(keys_[i])) Fail("List is missing ", keys_[i]);
    }
  }

  int KeyIndex(const std::string& key) const {
    const std::string p = prefix();
    if (key.compare(0, p.size(), p) != 0 || key.size() <= p.size() + 1) return -1;
    const int i = std::atoi(key.c_str() + p.size() + 1);
    return i >= 0 && i < kKeysPerThread && keys_[i] == key ? i : -1;
  }

  std::optional<int64_t> ReadBack(const std::string& key) {
    const absl::Time deadline = MonotonicNow() + absl::Seconds(60);
    while (MonotonicNow() < deadline) {
      grpc::ClientContext ctx;
      SetDeadline(&ctx);
      counters::v1::GetRequest req;
      req.set_key(key);
      counters::v1::GetResponse resp;
      const grpc::Status st = stub()->Get(&ctx, req, &resp);
      if (st.ok()) return resp.value();
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
      Reconnect();
    }
    Fail("no handler answered Get(", key, ") for 60 s at the end");
    return std::nullopt;
  }

  const int index_;
  const std::string address_;
  Totals* const totals_;
  std::mt19937_64 rng_;
  std::vector<std::string> keys_;
  std::vector<KeyRange> ranges_;
  std::vector<bool> ever_acked_;
  int64_t final_sum_ = 0;
  std::unique_ptr<CounterService::Stub> stub_;
};

// ---- Memory sampling (point 5). ----

struct Memory {
  uint64_t rss_kib = 0;
  uint64_t anon_kib = 0;
};

bool ReadMemory(pid_t pid, Memory* m) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  if (!in) return false;
  std::string line;
  bool got = false;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      m->rss_kib = std::strtoull(line.c_str() + 6, nullptr, 10);
      got = true;
    } else if (line.rfind("RssAnon:", 0) == 0) {
      m->anon_kib = std::strtoull(line.c_str() + 8, nullptr, 10);
    }
  }
  return got;
}

// Per role: the first and last sample of each process, and the peak over all.
class MemoryLog {
 public:
  void Sample(const std::string& role, pid_t pid) {
    Memory m;
    if (!ReadMemory(pid, &m)) return;  // it just exited
    std::lock_guard<std::mutex> lock(mu_);
    Role& r = roles_[role];
    if (r.first.empty()) r.first_round = round_;
    if (r.first_round == round_) r.first[pid] = m;
    r.last_round_pids[round_].push_back(pid);
    r.latest[pid] = m;
    r.peak.rss_kib = std::max(r.peak.rss_kib, m.rss_kib);
    r.peak.anon_kib = std::max(r.peak.anon_kib, m.anon_kib);
    r.processes.insert(pid);
  }
  void EndRound() {
    std::lock_guard<std::mutex> lock(mu_);
    ++round_;
  }
  void Print() {
    std::lock_guard<std::mutex> lock(mu_);
    auto mib = [](uint64_t kib) { return absl::StrFormat("%.1f", kib / 1024.0); };
    Say("memory in MiB (VmRSS / RssAnon); start and end: each process of the role then");
    for (auto& [name, r] : roles_) {
      std::string start, end;
      for (auto& [pid, m] : r.first) {
        absl::StrAppend(&start, " ", mib(m.rss_kib), "/", mib(m.anon_kib));
      }
      if (!r.last_round_pids.empty()) {
        for (pid_t pid : r.last_round_pids.rbegin()->second) {
          const Memory& m = r.latest[pid];
          absl::StrAppend(&end, " ", mib(m.rss_kib), "/", mib(m.anon_kib));
        }
      }
      Say(absl::StrFormat("  %-10s start%s | end%s | peak %s/%s | %d processes", name, start, end,
                          mib(r.peak.rss_kib), mib(r.peak.anon_kib), r.processes.size()));
    }
  }

 private:
  struct Role {
    int first_round = 0;
    std::map<pid_t, Memory> first;
    std::map<pid_t, Memory> latest;
    std::map<int, std::vector<pid_t>> last_round_pids;  // round -> pids sampled
    std::set<pid_t> processes;
    Memory peak;
  };
  std::mutex mu_;
  int round_ = 0;
  std::map<std::string, Role> roles_;
};

// The role of each child pid, from the supervisor's "started <role>" lines.
std::map<pid_t, std::string> ChildRoles(const Daemon& d) {
  std::map<pid_t, std::string> roles;
  for (const char* role : {"handler", "aggregator"}) {
    for (const std::string& line : d.LogLinesWithMsg(absl::StrCat("started ", role))) {
      roles[static_cast<pid_t>(std::atoll(JsonField(line, "child_pid").c_str()))] = role;
    }
  }
  return roles;
}

int SoakSeconds() {
  const char* s = std::getenv("SOAK_SECONDS");
  if (s == nullptr || *s == '\0') return 600;
  const int v = std::atoi(s);
  if (v <= 0) {
    std::fprintf(stderr, "soak: SOAK_SECONDS must be a positive number of seconds, not '%s'\n", s);
    std::exit(2);
  }
  return v;
}

int Main() {
  const absl::Duration run_for = absl::Seconds(SoakSeconds());
  DaemonOptions options;
  options.handlers = 2;
  options.snapshot_interval = "10s";
  absl::StatusOr<std::unique_ptr<Daemon>> started = Daemon::Start(options);
  if (!started.ok()) {
    std::fprintf(stderr, "soak: the daemon did not start: %s\n",
                 std::string(started.status().message()).c_str());
    return 2;
  }
  Daemon& daemon = **started;
  Say("daemon ", daemon.pid(), " on ", daemon.address(), ", data in ", daemon.data_dir(), "; ",
      kLoadThreads, " load threads for ", absl::FormatDuration(run_for),
      ", a handler SIGKILL every ", absl::FormatDuration(kKillEvery), ", a Snapshot every ",
      absl::FormatDuration(kSnapshotEvery));

  Totals totals;
  std::atomic<bool> stop_load{false}, stop_side{false};
  std::mutex side_mu;
  std::condition_variable side_cv;
  auto side_wait = [&](absl::Duration d) {  // false once told to stop
    std::unique_lock<std::mutex> lock(side_mu);
    return !side_cv.wait_for(lock, absl::ToChronoNanoseconds(d), [&] { return stop_side.load(); });
  };

  MemoryLog memory;
  auto sample_all = [&] {
    memory.Sample("supervisor", daemon.pid());
    const std::map<pid_t, std::string> roles = ChildRoles(daemon);
    for (pid_t pid : daemon.ChildPids()) {
      auto it = roles.find(pid);
      memory.Sample(it == roles.end() ? "child" : it->second, pid);
    }
    memory.Sample("soak-client", ::getpid());
    memory.EndRound();
  };
  sample_all();
  std::thread sampler([&] {
    while (side_wait(kSampleEvery)) sample_all();
  });

  std::atomic<int> kills{0};
  std::thread killer([&] {
    int turn = 0;
    while (side_wait(kKillEvery)) {
      const std::map<pid_t, std::string> roles = ChildRoles(daemon);
      std::vector<pid_t> handlers;
      for (pid_t pid : daemon.ChildPids()) {
        auto it = roles.find(pid);
        if (it != roles.end() && it->second == "handler") handlers.push_back(pid);
      }
      if (handlers.empty()) {
        Fail("no live handler to kill at kill ", kills.load() + 1);
        continue;
      }
      const pid_t victim = handlers[turn++ % handlers.size()];
      if (::kill(victim, SIGKILL) == 0) {
        ++kills;
        Say("SIGKILL handler ", victim, " (kill ", kills.load(), ")");
      }
    }
  });

  std::thread snapshotter([&] {
    auto stub = NewStubOnOwnConnection(daemon.address());
    while (side_wait(kSnapshotEvery)) {
      grpc::ClientContext ctx;
      ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
      counters::v1::SnapshotRequest req;
      counters::v1::SnapshotResponse resp;
      const grpc::Status st = stub->Snapshot(&ctx, req, &resp);
      if (st.ok()) {
        ++totals.snapshots.ok;
      } else {
        totals.snapshots.Failed("Snapshot", st);
        Say("Snapshot failed: code ", static_cast<int>(st.error_code()), ": ", st.error_message());
        stub = NewStubOnOwnConnection(daemon.address());
      }
    }
  });

  std::vector<std::unique_ptr<LoadThread>> loads;
  std::vector<std::thread> load_threads;
  for (int i = 0; i < kLoadThreads; ++i) {
    loads.push_back(std::make_unique<LoadThread>(i, daemon.address(), &totals));
    load_threads.emplace_back([&, i] { loads[i]->Run(&stop_load); });
  }
  const absl::Time start = MonotonicNow();
  const absl::Time end = start + run_for;
  while (MonotonicNow() < end) {
    std::this_thread::sleep_for(
        absl::ToChronoNanoseconds(std::min(end - MonotonicNow(), absl::Minutes(1))));
    Say(absl::FormatDuration(absl::Trunc(MonotonicNow() - start, absl::Seconds(1))), ": ",
        totals.increments.ok.load(), " increments, ", totals.batches.ok.load(), " batches, ",
        totals.gets.ok.load(), " gets, ", totals.lists.ok.load(), " lists acknowledged; ",
        kills.load(), " kills, ", totals.snapshots.ok.load(), " snapshots");
  }
  stop_load = true;
  for (std::thread& t : load_threads) t.join();
  {
    std::lock_guard<std::mutex> lock(side_mu);
    stop_side = true;
  }
  side_cv.notify_all();
  killer.join();
  snapshotter.join();
  sampler.join();
  sample_all();  // the end figures: after the load, before the checks

  // Point 6: the totals.
  int64_t acked = 0, unknown = 0, final_sum = 0;
  for (auto& l : loads) {
    l->FinalCheck();
    acked += l->acked_sum();
    unknown += l->unknown_sum();
    final_sum += l->final_sum();
  }
  {
    KeyRange hot{totals.hot_acked.load(), totals.hot_unknown.load()};
    auto stub = NewStubOnOwnConnection(daemon.address());
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    counters::v1::GetRequest req;
    req.set_key(kHotKey);
    counters::v1::GetResponse resp;
    const grpc::Status st = stub->Get(&ctx, req, &resp);
    if (!st.ok()) {
      Fail("Get(", kHotKey, ") at the end: ", st.error_message());
    } else if (!hot.Holds(resp.value())) {
      Fail(kHotKey, " holds ", resp.value(), " at the end, outside ", hot.Describe());
    } else {
      Say(kHotKey, " = ", resp.value(), " in ", hot.Describe());
    }
  }
  Say("own keys: ", kLoadThreads * kKeysPerThread, " keys sum to ", final_sum, ": acknowledged ",
      acked, ", plus ", final_sum - acked, " of ", unknown,
      " whose calls failed with the outcome unknown");
  Say(totals.increments.Describe("Increment"), "; ", totals.batches.Describe("IncrementBatch"),
      "; ", totals.gets.Describe("Get"), "; ", totals.lists.Describe("List (paged)"), "; ",
      totals.snapshots.Describe("Snapshot"), "; handler SIGKILLs ", kills.load());
  if (totals.snapshots.ok.load() == 0) Fail("no Snapshot call succeeded");
  // Every killed handler respawned (the last one may still be in its back-off).
  if (!daemon.WaitForLogCount("started handler", 2 + kills.load(), absl::Seconds(30))) {
    Fail(kills.load(), " handlers killed but only ",
         daemon.LogLinesWithMsg("started handler").size() - 2, " respawned");
  }
  memory.Print();

  absl::StatusOr<int> status = daemon.Terminate();
  if (!status.ok()) {
    Fail("SIGTERM: ", status.status().message());
  } else if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    Fail("the daemon did not exit 0 on SIGTERM (wait status ", *status, ")");
  }
  const int failures = g_failures.load();
  Say(failures == 0 ? "PASS" : absl::StrCat("FAIL: ", failures, " checks failed"));
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace countersd::testing

int main() { return countersd::testing::Main(); }
