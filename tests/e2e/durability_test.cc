// When snapshots cannot be written, whatever the reason, the daemon says so
// (issue 10): health service countersd.durability turns NOT_SERVING once a
// change older than --durability-lag-limit is in no durable snapshot, and
// SERVING again once one holds it; GetStats gives the lag and the failures;
// the log says it at error level every interval. Increments go on
// throughout, and the main health service stays SERVING (README, "Health and
// readiness"). The limit is a flag so that these tests take seconds: 2s here,
// where the default would be max(10s, 10 x --snapshot-interval).
#include <signal.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/e2e/scoped_tmpfs.h"

namespace countersd::testing {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr char kDurability[] = "countersd.durability";
constexpr absl::Duration kStateDeadline = absl::Seconds(60);

DaemonOptions FastLagOptions() {
  DaemonOptions options;
  options.handlers = 1;
  options.snapshot_interval = "100ms";
  options.extra_flags = {"--durability-lag-limit=2s"};
  return options;
}

absl::StatusOr<HealthCheckResponse::ServingStatus> Check(const std::string& address,
                                                         const std::string& service) {
  auto stub = Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return resp.status();
}

// Polls Check (an observable state: polling is the way to wait) until it
// says `want`, incrementing a counter between checks so that there is
// always a fresh change to be made durable.
::testing::AssertionResult WaitForDurability(const std::string& address,
                                             HealthCheckResponse::ServingStatus want) {
  auto stub = NewStub(address);
  const absl::Time deadline = MonotonicNow() + kStateDeadline;
  std::string last = "no answer";
  while (MonotonicNow() < deadline) {
    grpc::ClientContext ctx;
    counters::v1::IncrementRequest req;
    req.set_key("durability/tick");
    counters::v1::IncrementResponse resp;
    grpc::Status inc = stub->Increment(&ctx, req, &resp);
    if (!inc.ok()) return ::testing::AssertionFailure() << "Increment failed: " << inc.error_message();
    auto status = Check(address, kDurability);
    if (status.ok() && *status == want) return ::testing::AssertionSuccess();
    last = status.ok() ? HealthCheckResponse::ServingStatus_Name(*status) : status.status().ToString();
    absl::SleepFor(absl::Milliseconds(200));  // the poll's period, not a synchronisation
  }
  return ::testing::AssertionFailure() << kDurability << " never became "
                                       << HealthCheckResponse::ServingStatus_Name(want)
                                       << "; last: " << last;
}

counters::v1::GetStatsResponse Stats(const std::string& address) {
  grpc::ClientContext ctx;
  counters::v1::GetStatsResponse stats;
  EXPECT_TRUE(NewStub(address)->GetStats(&ctx, {}, &stats).ok());
  return stats;
}

grpc::Status Snapshot(const std::string& address) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(45)));
  counters::v1::SnapshotResponse resp;
  return NewStub(address)->Snapshot(&ctx, {}, &resp);
}

TEST(DurabilityTest, AHealthyDaemonReportsDurabilityServingAndNoLag) {
  auto daemon = Daemon::Start(FastLagOptions());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE(Snapshot((*daemon)->address()).ok());
  EXPECT_TRUE(WaitForDurability((*daemon)->address(), HealthCheckResponse::SERVING));
  const auto stats = Stats((*daemon)->address());
  EXPECT_EQ(stats.consecutive_snapshot_failures(), 0u);
}

// A stopped snapshot writer writes nothing and logs nothing itself: the
// handlers see the lag in the mapping.
TEST(DurabilityTest, StoppedSnapshotWriterTurnsDurabilityNotServingUntilContinued) {
  auto daemon = Daemon::Start(FastLagOptions());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();
  ASSERT_TRUE(WaitForDurability(address, HealthCheckResponse::SERVING));
  const auto stats = Stats(address);
  std::vector<pid_t> children = (*daemon)->ChildPids();
  children.erase(std::remove_if(children.begin(), children.end(),
                                [&](pid_t p) {
                                  for (const auto& h : stats.handlers())
                                    if (h.pid() == p) return true;
                                  return false;
                                }),
                 children.end());
  ASSERT_EQ(children.size(), 1u) << "expected one aggregator besides the handler";
  const pid_t aggregator = children[0];

  // A Watch of countersd.durability sees it go both ways.
  auto health = Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext watch_ctx;
  HealthCheckRequest watch_req;
  watch_req.set_service(kDurability);
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> watch =
      health->Watch(&watch_ctx, watch_req);
  std::mutex mu;
  std::vector<HealthCheckResponse::ServingStatus> seen;
  std::thread reader([&] {
    HealthCheckResponse resp;
    while (watch->Read(&resp)) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(resp.status());
    }
  });

  ASSERT_EQ(kill(aggregator, SIGSTOP), 0);
  EXPECT_TRUE(WaitForDurability(address, HealthCheckResponse::NOT_SERVING));
  EXPECT_EQ(Check(address, "").value_or(HealthCheckResponse::UNKNOWN),
            HealthCheckResponse::SERVING)
      << "the main service must stay SERVING";
  const auto lagging = Stats(address);
  ASSERT_TRUE(lagging.has_oldest_undurable_change_age_seconds());
  EXPECT_GE(lagging.oldest_undurable_change_age_seconds(), 2u);
  EXPECT_TRUE((*daemon)->WaitForLog("SNAPSHOTS ARE NOT BEING WRITTEN", kStateDeadline))
      << (*daemon)->log();

  // The watch is re-evaluated once a second (kDurabilityPollInterval): the
  // writer stays stopped until the watch has said NOT_SERVING, or a
  // NOT_SERVING shorter than a poll could pass between two of them.
  auto watch_saw_sequence = [&](std::vector<HealthCheckResponse::ServingStatus> want) {
    std::lock_guard<std::mutex> lock(mu);
    return std::search(seen.begin(), seen.end(), want.begin(), want.end()) != seen.end();
  };
  auto watch_saw = [&] {
    return watch_saw_sequence({HealthCheckResponse::SERVING, HealthCheckResponse::NOT_SERVING,
                               HealthCheckResponse::SERVING});
  };
  const absl::Time stopped_deadline = MonotonicNow() + kStateDeadline;
  while (!watch_saw_sequence({HealthCheckResponse::SERVING, HealthCheckResponse::NOT_SERVING}) &&
         MonotonicNow() < stopped_deadline) {
    absl::SleepFor(absl::Milliseconds(100));  // polling the reader thread's list, with a deadline
  }

  ASSERT_EQ(kill(aggregator, SIGCONT), 0);
  EXPECT_TRUE(WaitForDurability(address, HealthCheckResponse::SERVING));
  EXPECT_TRUE((*daemon)->WaitForLog("snapshots caught up", kStateDeadline)) << (*daemon)->log();

  // The watch is polled once a second: wait for it to catch up, then end it.
  const absl::Time deadline = MonotonicNow() + kStateDeadline;
  while (!watch_saw() && MonotonicNow() < deadline) absl::SleepFor(absl::Milliseconds(100));
  watch_ctx.TryCancel();
  reader.join();
  std::string statuses;
  for (HealthCheckResponse::ServingStatus st : seen) {
    absl::StrAppend(&statuses, " ", HealthCheckResponse::ServingStatus_Name(st));
  }
  EXPECT_TRUE(watch_saw()) << "the Watch did not report SERVING, NOT_SERVING, SERVING; it "
                           << "reported:" << statuses << "; finished with "
                           << watch->Finish().error_message();
}

// A full disk (a real one: a small tmpfs holds the map but not the snapshot
// file): the daemon serves, Snapshot fails INTERNAL, durability is
// NOT_SERVING; once the disk has room, snapshots resume by themselves.
TEST(DurabilityTest, FullDiskFailsSnapshotsLoudlyWhileIncrementsGoOnAndRecoversWhenFreed) {
  ScopedTmpfs disk("24m");
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  DaemonOptions options = FastLagOptions();
  options.data_dir = disk.path();
  // The map (~5.6 MB of counters and 11 MB of session places) fits in
  // 24 MB; the snapshot file (~6.8 MB of counters and 19 MB of sessions)
  // does not.
  options.capacity = 20000;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();

  EXPECT_TRUE(WaitForDurability(address, HealthCheckResponse::NOT_SERVING)) << (*daemon)->log();
  grpc::Status snap = Snapshot(address);
  EXPECT_EQ(snap.error_code(), grpc::StatusCode::INTERNAL) << snap.error_message();
  const auto stats = Stats(address);
  EXPECT_GT(stats.consecutive_snapshot_failures(), 0u);
  EXPECT_TRUE(stats.has_oldest_undurable_change_age_seconds());
  EXPECT_TRUE((*daemon)->WaitForLog("SNAPSHOT FAILED", kStateDeadline));
  EXPECT_TRUE((*daemon)->WaitForLog("No space left on device", kStateDeadline)) << (*daemon)->log();
  EXPECT_TRUE((*daemon)->WaitForLog("SNAPSHOTS ARE NOT BEING WRITTEN", kStateDeadline));

  ASSERT_TRUE(disk.Resize("64m"));
  EXPECT_TRUE(WaitForDurability(address, HealthCheckResponse::SERVING)) << (*daemon)->log();
  EXPECT_TRUE(Snapshot(address).ok());
  EXPECT_EQ(Stats(address).consecutive_snapshot_failures(), 0u);
  auto code = (*daemon)->Terminate();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_TRUE(WIFEXITED(*code) && WEXITSTATUS(*code) == 0) << (*daemon)->log();
}

// A disk too small for the map: exit 1 at start with a clear error, never
// SIGBUS later.
TEST(DurabilityTest, DiskTooSmallForTheMapFailsAtStartWithAClearError) {
  ScopedTmpfs disk("1m");
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  auto run = RunCommand({CountersdPath(), "--listen=127.0.0.1:0", "--handlers=1",
                         absl::StrCat("--data-dir=", disk.path()), "--capacity=100000"},
                        absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 1) << run->err;
  EXPECT_NE(run->err.find("cannot start"), std::string::npos) << run->err;
  EXPECT_NE(run->err.find("No space left on device"), std::string::npos) << run->err;
}

}  // namespace
}  // namespace countersd::testing
