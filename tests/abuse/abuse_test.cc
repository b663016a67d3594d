// Abuse tests (issue 11): a real daemon, the abuse patterns of
// abuse_load.py (raw HTTP/2) or grpc_patterns.h (floods of valid gRPC calls:
// List, Health.Watch) against it, and two checks that hold whatever the
// pattern:
// every handler's RssAnon stays under kRssBound, and a canary client on
// other connections keeps being served.
//
// How it works:
//  1. Start the daemon with the harness (port 0, temporary data directory)
//     and learn the handler pids from GetStats.
//  2. The canary opens its own connections until it has one served by each
//     handler (GetStats' served_by_pid), then, on a thread, calls Increment
//     round-robin over them with a generous deadline, recording each call's
//     latency and status.
//  3. A sampler thread reads each handler's /proc/<pid>/status every 10 ms
//     and keeps the peak RssAnon.
//  4. The pattern runs as a child process (/usr/bin/python3 abuse_load.py,
//     through RunCommand with a timeout) and prints one JSON line; or, for
//     the gRPC floods, on threads of the test (grpc_patterns.cc), which
//     return the same kind of line.
//  5. Asserts: the pattern's own outcome (closed, refused, ...), the RSS
//     bound, and that every canary call succeeded. Time is measured and
//     printed ("abuse-report" lines, which `make abuse` collects), never
//     asserted.
//
// ABUSE_FULL=1 (make abuse) runs the red team's sizes: 100,000 streams,
// 40 s of slowloris, 16 listers of 100,000 counters for 30 s, 1,000 watches
// held for 30 s. File descriptors: the test raises its own soft
// RLIMIT_NOFILE to the hard limit (the idle pattern needs 10,000 + slack;
// the machine's hard limit is 20,000); the daemon inherits it and each
// handler raises its own to --max-connections + 256.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"
#include "tests/abuse/grpc_patterns.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;

constexpr int64_t kRssBoundKib = 64 * 1024;  // the documented bound per handler
// Under AddressSanitizer (make check) the bound does not apply: its
// allocator keeps freed memory in quarantine, which malloc_trim cannot
// return, and its shadow memory adds to RssAnon. The patterns still run
// there, for what the sanitizers catch; the figures are still printed.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssBoundApplies = false;
#else
constexpr bool kRssBoundApplies = true;
#endif
// How many times slower a handler serves under AddressSanitizer. A
// rapid-reset burst holds the serving thread for as long as the handler
// takes to read it (see RapidResetMemoryComesBackAndTheCanaryIsServed), and
// a burst longer than --handler-stall-limit (5 s) gets the handler killed as
// stalled: one CI run's ASan handler took over 5 s for 30,000 streams that
// the release build reads in under one. Sanitizer runs send proportionally
// fewer streams, so the handler does the same work in the same time.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kSanitizerSlowdown = 4;
#else
constexpr int kSanitizerSlowdown = 1;
#endif
constexpr int kMaxConnections = 2048;        // the default here: 32 MiB / 16 KiB

bool Full() { return getenv("ABUSE_FULL") != nullptr; }

int64_t RssAnonKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) {
      int64_t kib = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits += c;
      }
      if (absl::SimpleAtoi(digits, &kib)) return kib;
    }
  }
  return -1;
}

// The integer value of "field" in a flat JSON object (-1 if absent).
int64_t JsonInt(const std::string& json, const std::string& field) {
  std::string key = absl::StrCat("\"", field, "\": ");
  size_t at = json.find(key);
  if (at == std::string::npos) return -1;
  int64_t v = 0;
  size_t end = json.find_first_of(",}", at + key.size());
  if (!absl::SimpleAtoi(json.substr(at + key.size(), end - at - key.size()), &v)) return -1;
  return v;
}

class RssSampler {
 public:
  explicit RssSampler(std::vector<pid_t> pids) : pids_(std::move(pids)) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        Sample();
        absl::SleepFor(absl::Milliseconds(10));  // a sampling period, not synchronisation
      }
    });
  }
  ~RssSampler() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Sample() {
    std::lock_guard<std::mutex> lock(mu_);
    for (pid_t pid : pids_) peak_[pid] = std::max(peak_[pid], RssAnonKib(pid));
  }
  int64_t peak(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_[pid];
  }

 private:
  std::vector<pid_t> pids_;
  std::mutex mu_;
  std::map<pid_t, int64_t> peak_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class Canary {
 public:
  // One connection per handler in `handlers`; false if one is not reached.
  bool Connect(const std::string& address, const std::set<pid_t>& handlers) {
    std::set<pid_t> covered;
    for (int attempt = 0; attempt < 64 && covered.size() < handlers.size(); ++attempt) {
      auto stub = NewStubOnOwnConnection(address);
      grpc::ClientContext ctx;
      ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
      counters::v1::GetStatsResponse resp;
      if (!stub->GetStats(&ctx, {}, &resp).ok()) continue;
      if (covered.insert(resp.served_by_pid()).second) stubs_.push_back(std::move(stub));
    }
    return covered.size() == handlers.size();
  }
  void Start() {
    thread_ = std::thread([this] {
      for (size_t i = 0; !stop_.load(); ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
        counters::v1::IncrementRequest req;
        req.set_key("abuse/canary");
        counters::v1::IncrementResponse resp;
        absl::Time start = MonotonicNow();
        grpc::Status s = stubs_[i % stubs_.size()]->Increment(&ctx, req, &resp);
        double ms = absl::ToDoubleMilliseconds(MonotonicNow() - start);
        std::lock_guard<std::mutex> lock(mu_);
        latencies_ms_.push_back(ms);
        if (!s.ok()) failures_.push_back(absl::StrCat(s.error_code(), ": ", s.error_message()));
        // Paced so that the canary measures, not loads: ~200 calls/s.
        absl::SleepFor(absl::Milliseconds(5));
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  ~Canary() { Stop(); }
  size_t calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return latencies_ms_.size();
  }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }
  double Percentile(double p) {
    std::lock_guard<std::mutex> lock(mu_);
    if (latencies_ms_.empty()) return -1;
    std::vector<double> v = latencies_ms_;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  }

 private:
  std::vector<std::unique_ptr<CounterService::Stub>> stubs_;
  std::mutex mu_;
  std::vector<double> latencies_ms_;
  std::vector<std::string> failures_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class AbuseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  void StartDaemon(std::vector<std::string> flags, int handlers = 2, uint64_t capacity = 1000) {
    DaemonOptions options;
    options.handlers = handlers;
    options.capacity = capacity;
    options.extra_flags = std::move(flags);
    auto daemon = Daemon::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
    auto stub = NewStub(daemon_->address());
    grpc::ClientContext ctx;
    counters::v1::GetStatsResponse resp;
    ASSERT_TRUE(stub->GetStats(&ctx, {}, &resp).ok());
    for (const auto& h : resp.handlers()) handlers_.insert(h.pid());
    ASSERT_EQ(handlers_.size(), static_cast<size_t>(handlers));
  }

  // Runs abuse_load.py PATTERN with `args`; its JSON line.
  std::string RunPattern(const std::string& pattern, std::vector<std::string> args,
                         absl::Duration timeout) {
    std::vector<std::string> argv = {"/usr/bin/python3", ABUSE_LOAD_SCRIPT, pattern,
                                     absl::StrCat("--address=", daemon_->address())};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = RunCommand(argv, timeout);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return "";
    EXPECT_EQ(result->exit_code, 0) << result->out << result->err;
    return result->out;
  }

  // Waits until every handler's RssAnon is under the bound (or the
  // deadline); the final values.
  std::map<pid_t, int64_t> SettledRss(absl::Duration timeout) {
    std::map<pid_t, int64_t> rss;
    absl::Time deadline = MonotonicNow() + timeout;
    for (;;) {
      bool all_under = true;
      for (pid_t pid : handlers_) {
        rss[pid] = RssAnonKib(pid);
        all_under = all_under && rss[pid] < kRssBoundKib;
      }
      if (all_under || MonotonicNow() > deadline) return rss;
      absl::SleepFor(absl::Milliseconds(50));  // polling a condition with a deadline
    }
  }

  void Report(const std::string& pattern, RssSampler& sampler, Canary* canary,
              const std::map<pid_t, int64_t>& final_rss, const std::string& json) {
    for (pid_t pid : handlers_) {
      std::printf("abuse-report pattern=%s handler=%d rss_peak_kib=%lld rss_final_kib=%lld\n",
                  pattern.c_str(), pid, static_cast<long long>(sampler.peak(pid)),
                  static_cast<long long>(final_rss.at(pid)));
    }
    if (canary != nullptr) {
      std::printf("abuse-report pattern=%s canary_calls=%zu canary_failures=%zu "
                  "canary_p50_ms=%.2f canary_p99_ms=%.2f\n",
                  pattern.c_str(), canary->calls(), canary->failures().size(),
                  canary->Percentile(0.50), canary->Percentile(0.99));
    }
    std::printf("abuse-report pattern=%s client=%s", pattern.c_str(), json.c_str());
    ReportServerConnections(pattern);
  }

  // The daemon's own connection counts (GetStats, every handler since the
  // start), beside the client's view of the same connections. Waits for
  // ready: at the cap this connection is refused until the gate sees the
  // pattern's closed (its `open` can be up to a second stale).
  void ReportServerConnections(const std::string& pattern) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    counters::v1::GetStatsResponse resp;
    if (NewStub(daemon_->address())->GetStats(&ctx, {}, &resp).ok()) {
      const counters::v1::ConnectionStats& c = resp.connections();
      std::printf("abuse-report pattern=%s server_accepted=%llu server_refused_over_cap=%llu "
                  "server_handshake_timeouts=%llu server_open=%llu\n",
                  pattern.c_str(), static_cast<unsigned long long>(c.accepted()),
                  static_cast<unsigned long long>(c.refused_over_cap()),
                  static_cast<unsigned long long>(c.handshake_timeouts()),
                  static_cast<unsigned long long>(c.open()));
    }
    std::fflush(stdout);
  }

  void ExpectCanaryServed(Canary& canary) {
    EXPECT_GT(canary.calls(), 0u);
    std::vector<std::string> failures = canary.failures();
    EXPECT_TRUE(failures.empty()) << failures.size() << " canary calls failed, first: "
                                  << failures.front();
  }

  void ExpectUnderBound(RssSampler& sampler, const std::map<pid_t, int64_t>& final_rss,
                        bool check_peak) {
    if (!kRssBoundApplies) {
      std::printf("abuse: AddressSanitizer build: the RssAnon bound is not checked\n");
      return;
    }
    for (pid_t pid : handlers_) {
      if (check_peak) {
        EXPECT_LT(sampler.peak(pid), kRssBoundKib) << "handler " << pid << " peak RssAnon";
      }
      EXPECT_LT(final_rss.at(pid), kRssBoundKib) << "handler " << pid << " RssAnon after";
    }
  }

  std::unique_ptr<Daemon> daemon_;
  std::set<pid_t> handlers_;
};

// The peak during the burst is reported, not asserted: in gRPC 1.51 each
// HEADERS frame becomes a call (~13 KB) as fast as the connection is read,
// and RST_STREAM'd streams are not counted by MAX_CONCURRENT_STREAMS, so the
// peak follows the client's send rate (see the report of issue 11). What
// the handler controls is that the memory comes back once the burst ends.
//
// Where the memory is (issue 11, fault 1; heaptrack attached to a handler):
// the peak is call arenas (grpc_core::Arena via FilterStackCall::Create from
// Server::ChannelData::AcceptStream, 11.4 KB each), made on the serving
// thread inside CompletionQueue::AsyncNext -> pollset_work -> ExecCtx::Flush
// -> combiner -> grpc_chttp2_perform_read. A reset stream's recv_message
// completes OK with no message, so the server publishes the call and, with
// no RequestCall posted, queues it in the method's RealRequestMatcher
// pending list (27,675 of them were still there at shutdown in that run).
// Nothing drains the list during the burst: tcp_posix reads again at once
// while TCP_INQ reports queued bytes, so the one serving thread stays inside
// that flush for as long as the client keeps the socket non-empty (a burst
// longer than --handler-stall-limit gets the handler killed as stalled).
// Without RST_STREAM there is no peak: gRPC closes the connection at stream
// 101 ("Max stream count exceeded"). Tried, none landed (100,000 streams,
// peak RssAnon; 1.22 GiB without any): a 16 or 64 KiB tcp max read chunk
// (0.84-1.0 GiB; reads stay at 8 KiB); a larger call pool (1,024 posted:
// 1.13 GiB); a 16 MiB memory quota (1.12 GiB: arenas are charged to it but
// nothing refuses them); SO_RCVBUF on admitted sockets, which works only
// while one 8 KiB read drains the whole window: 8 KiB gives 17-21 MiB but
// 1,000-op batches stall on loopback (18 calls/s, p50 839 ms, against
// 2,400-3,100), 16 KiB gives 15-31 MiB against this client but 1.13 GiB
// against one that queues all its frames at once, and with TCP_MAXSEG 1400
// 8 KiB lets 299 MiB through. A bound needs gRPC >= 1.58
// (grpc.server.max_pending_requests, reset streams counted as open) or a
// gate that relays the bytes and counts the streams gRPC has not finished.
TEST_F(AbuseTest, RapidResetMemoryComesBackAndTheCanaryIsServed) {
  StartDaemon({});
  Canary canary;
  ASSERT_TRUE(canary.Connect(daemon_->address(), handlers_));
  RssSampler sampler({handlers_.begin(), handlers_.end()});
  canary.Start();
  int streams = (Full() ? 100000 : 30000) / kSanitizerSlowdown;
  std::string json = RunPattern("rapid-reset", {absl::StrCat("--streams=", streams), "--seconds=30"},
                                absl::Seconds(90));
  std::map<pid_t, int64_t> final_rss = SettledRss(absl::Seconds(10));
  canary.Stop();
  sampler.Stop();
  Report("rapid-reset", sampler, &canary, final_rss, json);
  EXPECT_GT(JsonInt(json, "streams_sent"), 0) << json;
  EXPECT_EQ(JsonInt(json, "max_concurrent_streams"), 100) << json;
  ExpectUnderBound(sampler, final_rss, /*check_peak=*/false);
  ExpectCanaryServed(canary);
}

TEST_F(AbuseTest, SlowlorisConnectionsAreClosedAtTheHandshakeTimeout) {
  StartDaemon({"--handshake-timeout=2s"});
  Canary canary;
  ASSERT_TRUE(canary.Connect(daemon_->address(), handlers_));
  RssSampler sampler({handlers_.begin(), handlers_.end()});
  canary.Start();
  std::string seconds = Full() ? "--seconds=40" : "--seconds=8";
  std::string json = RunPattern("slowloris", {"--conns=100", "--interval=1", seconds},
                                absl::Seconds(90));
  std::map<pid_t, int64_t> final_rss = SettledRss(absl::Seconds(10));
  canary.Stop();
  sampler.Stop();
  Report("slowloris", sampler, &canary, final_rss, json);
  // 1 byte a second never completes a 33-byte preface within 2 s.
  EXPECT_EQ(JsonInt(json, "closed_by_server"), 100) << json;
  ExpectUnderBound(sampler, final_rss, /*check_peak=*/true);
  ExpectCanaryServed(canary);
}

TEST_F(AbuseTest, TenThousandIdleConnectionsStayUnderTheBound) {
  StartDaemon({absl::StrCat("--max-connections=", kMaxConnections)});
  Canary canary;
  ASSERT_TRUE(canary.Connect(daemon_->address(), handlers_));
  RssSampler sampler({handlers_.begin(), handlers_.end()});
  canary.Start();
  std::string json = RunPattern("idle", {"--conns=10000", "--seconds=10"}, absl::Seconds(120));
  std::map<pid_t, int64_t> final_rss = SettledRss(absl::Seconds(10));
  canary.Stop();
  sampler.Stop();
  Report("idle", sampler, &canary, final_rss, json);
  int64_t cap = static_cast<int64_t>(handlers_.size()) * kMaxConnections;
  EXPECT_LE(JsonInt(json, "accepted"), cap) << json;
  EXPECT_GE(JsonInt(json, "refused"), 10000 - cap) << json;
  ExpectUnderBound(sampler, final_rss, /*check_peak=*/true);
  ExpectCanaryServed(canary);
}

TEST_F(AbuseTest, ConnectionsOverTheCapAreReset) {
  StartDaemon({"--max-connections=20"}, /*handlers=*/1);
  std::string json =
      RunPattern("idle", {"--conns=40", "--seconds=30", "--until-decided"}, absl::Seconds(60));
  std::printf("abuse-report pattern=cap client=%s", json.c_str());
  ReportServerConnections("cap");
  EXPECT_EQ(JsonInt(json, "accepted"), 20) << json;
  EXPECT_EQ(JsonInt(json, "refused"), 20) << json;
}

TEST_F(AbuseTest, SilentConnectionsAreClosedAtTheHandshakeTimeout) {
  StartDaemon({"--handshake-timeout=1s"}, /*handlers=*/1);
  std::string json =
      RunPattern("silent", {"--conns=5", "--seconds=30", "--until-decided"}, absl::Seconds(60));
  std::printf("abuse-report pattern=silent client=%s", json.c_str());
  ReportServerConnections("silent");
  EXPECT_EQ(JsonInt(json, "closed_by_server"), 5) << json;
  EXPECT_EQ(JsonInt(json, "accepted"), 0) << json;
}

TEST_F(AbuseTest, IdleConnectionsAreClosedAtTheIdleTimeout) {
  StartDaemon({"--idle-timeout=1s"}, /*handlers=*/1);
  // Without the timeout the script holds them for its full 20 s.
  std::string json = RunPattern("idle", {"--conns=3", "--seconds=20"}, absl::Seconds(60));
  std::printf("abuse-report pattern=idle-timeout client=%s", json.c_str());
  ReportServerConnections("idle-timeout");
  EXPECT_EQ(JsonInt(json, "accepted"), 3) << json;
  EXPECT_EQ(JsonInt(json, "closed_by_server"), 3) << json;
}

// Several clients listing a big table (1,000,000 capacity), page after
// page of the largest size, over and over: List runs on each handler's
// low-priority thread (server/low_priority_calls.cc), so the canary's
// increments are still served, and a page costs memory for the page only.
TEST_F(AbuseTest, AListFloodOfABigTableLeavesTheCanaryServed) {
  StartDaemon({}, /*handlers=*/2, /*capacity=*/1000000);
  const int keys = Full() ? 100000 : 20000;
  {
    auto stub = NewStub(daemon_->address());
    for (int base = 0; base < keys; base += 1000) {
      counters::v1::IncrementBatchRequest req;
      for (int i = base; i < base + 1000; ++i) req.add_increments()->set_key(absl::StrCat("k/", i));
      counters::v1::IncrementBatchResponse resp;
      grpc::ClientContext ctx;
      ASSERT_TRUE(stub->IncrementBatch(&ctx, req, &resp).ok());
    }
  }
  Canary canary;
  ASSERT_TRUE(canary.Connect(daemon_->address(), handlers_));
  RssSampler sampler({handlers_.begin(), handlers_.end()});
  canary.Start();
  ListFloodResult flood = ListFlood(daemon_->address(), Full() ? 16 : 8, /*page_size=*/1000,
                                    Full() ? absl::Seconds(30) : absl::Seconds(10));
  std::map<pid_t, int64_t> final_rss = SettledRss(absl::Seconds(10));
  canary.Stop();
  sampler.Stop();
  Report("list-flood", sampler, &canary, final_rss, flood.Json());
  EXPECT_EQ(flood.errors, 0) << flood.first_error;
  EXPECT_GT(flood.pages, 0);
  EXPECT_GT(flood.listings, 0) << "no listing of the table was completed";
  ExpectUnderBound(sampler, final_rss, /*check_peak=*/true);
  ExpectCanaryServed(canary);
}

// 1,000 Health.Watch streams held open (a watch holds no thread, at most
// 1,024 per handler: server/health_service.h), then cancelled by the client.
TEST_F(AbuseTest, AThousandHealthWatchesStayUnderTheBoundAndTheCanaryIsServed) {
  StartDaemon({});
  Canary canary;
  ASSERT_TRUE(canary.Connect(daemon_->address(), handlers_));
  RssSampler sampler({handlers_.begin(), handlers_.end()});
  canary.Start();
  WatchFloodResult flood = WatchFlood(daemon_->address(), 1000, /*channels=*/20,
                                      Full() ? absl::Seconds(30) : absl::Seconds(10));
  std::map<pid_t, int64_t> final_rss = SettledRss(absl::Seconds(10));
  canary.Stop();
  sampler.Stop();
  Report("watch-flood", sampler, &canary, final_rss, flood.Json());
  EXPECT_EQ(flood.started, 1000) << flood.Json();
  EXPECT_EQ(flood.serving, 1000) << flood.Json();
  EXPECT_EQ(flood.ended_early, 0) << flood.Json();
  EXPECT_EQ(flood.cancelled, 1000) << flood.Json();
  ExpectUnderBound(sampler, final_rss, /*check_peak=*/true);
  ExpectCanaryServed(canary);
}

}  // namespace
}  // namespace countersd::testing
