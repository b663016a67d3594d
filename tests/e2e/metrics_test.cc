// GET /metrics end to end: a real Debian `prometheus` scrapes the daemon
// every second and its query API sees the calls made; `promtool check
// metrics` accepts the page; a SIGKILLed handler's respawn takes no total
// backwards (in /metrics or GetStats); the export prefix and its cap, with
// a key that needs escaping; durable writes and their log's syncs; the
// start-up errors of --metrics-listen; and
// the calls of processes attached with countersd::local, kept when one
// detaches.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/local/local_table.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"

extern char** environ;

namespace countersd::testing {
namespace {

using counters::v1::GetStatsRequest;
using counters::v1::GetStatsResponse;
using counters::v1::IncrementRequest;
using counters::v1::IncrementResponse;

constexpr absl::Duration kPatience = absl::Seconds(120);  // a loaded 2-core machine

// A free loopback port: bound to 0 and closed again (Prometheus binds it
// next; a clash fails the test loudly, it does not pass it).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    ADD_FAILURE() << "bind: " << strerror(errno);
  }
  close(fd);
  return ntohs(sa.sin_port);
}

// The value of the sample `series` (its name and labels exactly as the
// page writes them) on a /metrics page, or nullopt.
std::optional<double> SampleValue(const std::string& page, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return std::nullopt;
}

std::string Metrics(Daemon& d) {
  absl::StatusOr<HttpResponse> r = HttpGet(d.metrics_address(), "/metrics");
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->status, 200) << r->body;
  return r->body;
}

void Increment(counters::v1::CounterService::Stub& stub, const std::string& key, int times) {
  for (int i = 0; i < times; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    IncrementRequest req;
    req.set_key(key);
    IncrementResponse resp;
    grpc::Status s = stub.Increment(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
}

GetStatsResponse Stats(counters::v1::CounterService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  GetStatsResponse resp;
  grpc::Status s = stub.GetStats(&ctx, GetStatsRequest(), &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

uint64_t HandlerCalls(const GetStatsResponse& stats) {
  uint64_t n = 0;
  for (const auto& h : stats.handlers()) n += h.calls();
  return n;
}

// `promtool check metrics` on `page` (through a file on its stdin).
CommandResult Promtool(const std::string& dir, const std::string& page) {
  const std::string file = dir + "/metrics.txt";
  std::ofstream(file) << page;
  absl::StatusOr<CommandResult> r =
      RunCommand({"/bin/sh", "-c", absl::StrCat("/usr/bin/promtool check metrics < ", file)});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{-1, "", ""};
}

// Debian's prometheus, scraping `target` every second, on a free port;
// killed and reaped by the destructor.
class Prometheus {
 public:
  Prometheus(const std::string& dir, const std::string& target)
      : dir_(dir), address_(absl::StrCat("127.0.0.1:", FreePort())) {
    std::ofstream(dir + "/prometheus.yml") << "global:\n"
                                              "  scrape_interval: 1s\n"
                                              "  evaluation_interval: 1s\n"
                                              "scrape_configs:\n"
                                              "  - job_name: countersd\n"
                                              "    static_configs:\n"
                                              "      - targets: ['"
                                           << target << "']\n";
    std::vector<std::string> argv = {
        "/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
        "--storage.tsdb.path=" + dir + "/tsdb", "--web.listen-address=" + address_};
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir + "/prometheus.log";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "posix_spawn prometheus: " << strerror(rc);
    if (rc != 0) pid_ = -1;
  }
  ~Prometheus() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::string log() const {
    std::ifstream in(dir_ + "/prometheus.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The value of an instant query whose result is one sample, or nullopt
  // (Prometheus not up yet, no sample yet).
  std::optional<double> Query(const std::string& url_encoded_query) const {
    absl::StatusOr<HttpResponse> r =
        HttpGet(address_, "/api/v1/query?query=" + url_encoded_query, absl::Seconds(10));
    if (!r.ok() || r->status != 200) return std::nullopt;
    // {"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[<t>,"<v>"]}]}}
    const size_t at = r->body.find("\"value\":[");
    if (at == std::string::npos) return std::nullopt;
    const size_t open = r->body.find(",\"", at);
    const size_t close = r->body.find('"', open + 2);
    double v = 0;
    if (open == std::string::npos || close == std::string::npos ||
        !absl::SimpleAtod(r->body.substr(open + 2, close - open - 2), &v)) {
      return std::nullopt;
    }
    return v;
  }

 private:
  std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
};

// Options with `handlers` handlers (designated initializers would warn of
// the fields left out).
DaemonOptions WithHandlers(int handlers) {
  DaemonOptions o;
  o.handlers = handlers;
  return o;
}

TEST(Metrics, PrometheusScrapesTheCallsAndARespawnTakesNoTotalBackwards) {
  ScopedTempDir dir;
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(WithHandlers(2));
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string metrics = (*d)->metrics_address();
  ASSERT_FALSE(metrics.empty());
  auto stub = NewStub((*d)->address());
  constexpr int kCalls = 40;
  Increment(*stub, "metrics/prom", kCalls);

  // Prometheus sees them through its query API.
  Prometheus prometheus(dir.path(), metrics);
  const std::string query =  // sum(countersd_requests_total{method="Increment"})
      "sum%28countersd_requests_total%7Bmethod%3D%22Increment%22%7D%29";
  const absl::Time deadline = MonotonicNow() + kPatience;
  std::optional<double> seen;
  while (MonotonicNow() < deadline) {
    seen = prometheus.Query(query);
    if (seen && *seen >= kCalls) break;
    (*d)->WaitForLog("no such line: waits out a scrape interval", absl::Milliseconds(500));
  }
  ASSERT_TRUE(seen && *seen >= kCalls)
      << "Prometheus saw " << (seen ? *seen : -1) << "\n--- prometheus log ---\n"
      << prometheus.log();

  // promtool accepts the page.
  const std::string page = Metrics(**d);
  const CommandResult check = Promtool(dir.path(), page);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << "\n--- page ---\n" << page;

  // SIGKILL a handler; once its successor serves, nothing went backwards.
  const GetStatsResponse before_stats = Stats(*stub);
  const uint64_t before_calls = HandlerCalls(before_stats);
  const double before_metric =
      SampleValue(Metrics(**d), "countersd_requests_total{method=\"Increment\",code=\"OK\"}")
          .value_or(-1);
  ASSERT_GE(before_metric, kCalls);
  const std::vector<pid_t> handlers = (*d)->HandlerPids();
  ASSERT_EQ(handlers.size(), 2u);
  ASSERT_EQ(kill(handlers[0], SIGKILL), 0);
  ASSERT_TRUE((*d)->WaitForLogCount("\"msg\":\"started handler\"", 3, kPatience)) << (*d)->log();
  // The killed handler's connections reset: each try on a new connection.
  GetStatsResponse after_stats;
  const absl::Time respawn_deadline = MonotonicNow() + kPatience;
  while (MonotonicNow() < respawn_deadline) {
    auto fresh = NewStubOnOwnConnection((*d)->address());
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
    if (fresh->GetStats(&ctx, GetStatsRequest(), &after_stats).ok() &&
        after_stats.handlers_size() == 2) {
      break;
    }
    (*d)->WaitForLog("no such line: waits a moment", absl::Milliseconds(100));
  }
  ASSERT_EQ(after_stats.handlers_size(), 2) << after_stats.DebugString();
  EXPECT_GE(HandlerCalls(after_stats), before_calls);  // GetStats' own calls add, never lose
  const std::string after = Metrics(**d);
  EXPECT_GE(
      SampleValue(after, "countersd_requests_total{method=\"Increment\",code=\"OK\"}").value_or(-1),
      before_metric);
  EXPECT_EQ(
      SampleValue(after, "countersd_process_restarts_total{role=\"handler\",reason=\"signaled\"}"),
      1);
  EXPECT_TRUE(absl::StrContains(after, "process_cpu_seconds_total{role=\"handler\",index=\"0\"}"))
      << after;
  EXPECT_TRUE(absl::StrContains(after, "process_open_fds{role=\"supervisor\"}")) << after;
  EXPECT_TRUE(absl::StrContains(after, "process_resident_memory_bytes{role=\"aggregator\"}"));
  bool restart_reported = false;
  for (const auto& r : after_stats.restarts()) {
    if (r.role() == "handler" && r.reason() == "signaled" && r.count() == 1)
      restart_reported = true;
  }
  EXPECT_TRUE(restart_reported) << after_stats.DebugString();
  // Prometheus has scraped for a second at least since the daemon started.
  EXPECT_GE(after_stats.uptime_seconds(), 1u);
}

TEST(Metrics, ExportsTheCountersUnderThePrefixUpToTheCapEscapingTheirKeys) {
  constexpr int kMax = 10;
  DaemonOptions options = WithHandlers(1);
  options.extra_flags = {"--metrics-export-prefix=exp/", "--metrics-export-prefix=exp/sub",
                         absl::StrCat("--metrics-export-max=", kMax)};
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(options);
  ASSERT_TRUE(d.ok()) << d.status();
  auto stub = NewStub((*d)->address());
  // kMax + 5 keys under exp/; the first in key order needs escaping.
  const std::string odd = "exp/!q\"b\\s";
  Increment(*stub, odd, 3);
  for (int i = 0; i < kMax + 4; ++i) Increment(*stub, absl::StrCat("exp/", 10 + i), 1);
  Increment(*stub, "other/key", 1);
  const std::string page = Metrics(**d);
  int exported = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::StartsWith(line, "countersd_counter_value{")) ++exported;
  }
  EXPECT_EQ(exported, kMax) << page;
  EXPECT_EQ(SampleValue(page, "countersd_counter_values_omitted"), 5) << page;
  EXPECT_EQ(SampleValue(page, "countersd_counter_value{key=\"exp/!q\\\"b\\\\s\"}"), 3) << page;
  EXPECT_EQ(SampleValue(page, "countersd_counter_value{key=\"exp/10\"}"), 1) << page;
  EXPECT_FALSE(absl::StrContains(page, "other/key")) << page;
}

TEST(Metrics, DurableWritesAreCountedWithTheSyncsThatMadeThemDurable) {
  DaemonOptions options = WithHandlers(1);
  options.snapshot_interval = "1h";
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(options);
  ASSERT_TRUE(d.ok()) << d.status();
  auto stub = NewStub((*d)->address());
  constexpr int kWrites = 5;
  // One at a time: each is a commit turn of its own.
  for (int i = 0; i < kWrites; ++i) {
    grpc::Status st = IncrementWithOptions(stub.get(), "durable/m", 1, SessionOptions("", 0, true));
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  const std::string page = Metrics(**d);
  EXPECT_EQ(SampleValue(page, "countersd_durable_log_records_total"), kWrites) << page;
  EXPECT_EQ(SampleValue(page, "countersd_durable_log_records_synced_total"), kWrites) << page;
  EXPECT_EQ(SampleValue(page, "countersd_durable_log_sync_duration_seconds_count"), kWrites)
      << page;
  EXPECT_EQ(SampleValue(page, "countersd_durable_log_sync_failures_total"), 0) << page;
  EXPECT_EQ(SampleValue(page, "countersd_requests_total{method=\"Increment\",code=\"OK\"}"),
            kWrites)
      << page;
}

TEST(Metrics, ABadOrBusyMetricsAddressFailsTheStart) {
  absl::StatusOr<CommandResult> bad =
      RunCommand({CountersdPath(), "--metrics-listen=localhost:x", "--data-dir=/nonexistent"});
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->exit_code, 2);
  EXPECT_TRUE(absl::StrContains(bad->err, "--metrics-listen")) << bad->err;
  absl::StatusOr<CommandResult> empty_prefix =
      RunCommand({CountersdPath(), "--metrics-export-prefix=", "--data-dir=/nonexistent"});
  ASSERT_TRUE(empty_prefix.ok()) << empty_prefix.status();
  EXPECT_EQ(empty_prefix->exit_code, 2);
  EXPECT_TRUE(absl::StrContains(empty_prefix->err, "--metrics-export-prefix")) << empty_prefix->err;

  absl::StatusOr<std::unique_ptr<Daemon>> first = Daemon::Start(WithHandlers(1));
  ASSERT_TRUE(first.ok()) << first.status();
  DaemonOptions clash = WithHandlers(1);
  clash.metrics_listen = (*first)->metrics_address();
  absl::StatusOr<std::unique_ptr<Daemon>> second = Daemon::Start(clash);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "already in use")) << second.status();
}

TEST(Metrics, ARespawnedAggregatorServesTheSamePortAndCountsItsRestart) {
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(WithHandlers(1));
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string metrics = (*d)->metrics_address();
  ASSERT_FALSE(metrics.empty());
  ASSERT_FALSE(Metrics(**d).empty());
  // The aggregator: the supervisor's child that is not a handler.
  pid_t aggregator = 0;
  const std::vector<pid_t> handlers = (*d)->HandlerPids();
  for (pid_t p : (*d)->ChildPids()) {
    if (std::find(handlers.begin(), handlers.end(), p) == handlers.end()) aggregator = p;
  }
  ASSERT_NE(aggregator, 0);
  ASSERT_EQ(kill(aggregator, SIGKILL), 0);
  ASSERT_TRUE((*d)->WaitForLogCount("metrics listening on " + metrics, 2, kPatience))
      << (*d)->log();
  const std::string page = Metrics(**d);
  EXPECT_EQ(SampleValue(
                page, "countersd_process_restarts_total{role=\"aggregator\",reason=\"signaled\"}"),
            1)
      << page;
}

TEST(Metrics, TheMetricsFlagsComeFromTheEnvironmentToo) {
  absl::StatusOr<CommandResult> r =
      RunCommand({CountersdPath(), "--data-dir=/nonexistent"}, absl::Seconds(60),
                 {"COUNTERSD_METRICS_EXPORT_MAX=-1"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r->err, "--metrics-export-max")) << r->err;
  EXPECT_TRUE(absl::StrContains(r->err, "COUNTERSD_METRICS_EXPORT_MAX")) << r->err;

  DaemonOptions options = WithHandlers(1);
  options.extra_env = {"COUNTERSD_METRICS_EXPORT_PREFIX=env/"};
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(options);
  ASSERT_TRUE(d.ok()) << d.status();
  auto stub = NewStub((*d)->address());
  Increment(*stub, "env/x", 2);
  EXPECT_EQ(SampleValue(Metrics(**d), "countersd_counter_value{key=\"env/x\"}"), 2);
}

TEST(Metrics, AttachedCallsAreCountedAndADetachTakesNoTotalBackwards) {
  ScopedTempDir dir;
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(WithHandlers(1));
  ASSERT_TRUE(d.ok()) << d.status();
  using countersd::local::LocalTable;
  absl::StatusOr<std::unique_ptr<LocalTable>> a = LocalTable::Attach((*d)->data_dir());
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::unique_ptr<LocalTable>> b = LocalTable::Attach((*d)->data_dir());
  ASSERT_TRUE(b.ok()) << b.status();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*a)->Increment("local/m", 1).ok());
  EXPECT_EQ((*a)->Get("local/none").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE((*b)->Increment("local/m", 1).ok());
  ASSERT_TRUE((*b)->Increment("local/m", 1).ok());
  const std::string slot_a = absl::StrCat((*a)->slot());
  const std::string slot_b = absl::StrCat((*b)->slot());

  std::string page = Metrics(**d);
  EXPECT_EQ(SampleValue(page, "countersd_local_attachers"), 2) << page;
  EXPECT_EQ(SampleValue(page, "countersd_local_calls_total{method=\"Increment\"}"), 7) << page;
  EXPECT_EQ(SampleValue(page, "countersd_local_calls_total{method=\"Get\"}"), 1) << page;
  EXPECT_EQ(SampleValue(page, "countersd_local_calls_total{method=\"Set\"}"), 0) << page;
  EXPECT_EQ(SampleValue(page, "countersd_local_call_failures_total"), 1) << page;
  EXPECT_EQ(SampleValue(page, "countersd_local_attacher_calls_total{slot=\"" + slot_a +
                                  "\",method=\"Increment\"}"),
            5)
      << page;
  EXPECT_EQ(SampleValue(page, "countersd_local_attacher_calls_total{slot=\"" + slot_b +
                                  "\",method=\"Increment\"}"),
            2)
      << page;
  // No RPC made them.
  EXPECT_EQ(SampleValue(page, "countersd_requests_total{method=\"Increment\",code=\"OK\"}"), 0);
  const CommandResult check = Promtool(dir.path(), page);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << "\n--- page ---\n" << page;

  b->reset();
  page = Metrics(**d);
  EXPECT_EQ(SampleValue(page, "countersd_local_attachers"), 1) << page;
  EXPECT_EQ(SampleValue(page, "countersd_local_calls_total{method=\"Increment\"}"), 7) << page;
  EXPECT_FALSE(absl::StrContains(page, "slot=\"" + slot_b + "\"")) << page;
  EXPECT_EQ(Promtool(dir.path(), page).exit_code, 0);
}

TEST(Metrics, AnEmptyMetricsListenServesNoMetrics) {
  DaemonOptions options = WithHandlers(1);
  options.metrics_listen = "";
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(options);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(absl::StrContains((*d)->log(), "metrics listening on")) << (*d)->log();
}

}  // namespace
}  // namespace countersd::testing
