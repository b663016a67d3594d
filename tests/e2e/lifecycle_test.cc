// Start, stop and refusals: clean shutdown under load, a second daemon on
// the same data directory or port, bad flags, --help.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "shared/data_dir.h"
#include "shared/monotonic_time.h"
#include "shared/snapshot_file.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;
using ::testing::HasSubstr;

uint64_t ParseCount(const std::string& out, std::string_view field) {
  for (absl::string_view part : absl::StrSplit(out, absl::ByAnyChar(" \n"))) {
    std::string prefix = absl::StrCat(std::string(field), "=");
    if (absl::StartsWith(part, prefix)) {
      uint64_t n = 0;
      if (absl::SimpleAtoi(part.substr(prefix.size()), &n)) return n;
    }
  }
  ADD_FAILURE() << "no " << field << " in: " << out;
  return 0;
}

TEST(LifecycleTest, SigtermUnderLoadExitsZeroWithFinalSnapshotAndRestartKeepsValues) {
  ScopedTempDir dir;
  DaemonOptions options;
  options.data_dir = dir.path();
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();
  const std::string key = "life/shared";

  constexpr int kClients = 4;
  std::vector<absl::StatusOr<CommandResult>> results(kClients, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      results[i] =
          RunCommand({LoadClientPath(), absl::StrCat("--address=", address),
                      absl::StrCat("--shared_key=", key), "--count=1000000", "--max_failures=20",
                      "--calls_per_channel=200", "--deadline_ms=20000"},
                     absl::Minutes(3));
    });
  }
  // Wait until the load is well under way (a condition, with a deadline).
  auto stub = NewStub(address);
  int64_t seen = 0;
  for (absl::Time deadline = MonotonicNow() + absl::Seconds(60); seen < 2000 && MonotonicNow() < deadline;
       absl::SleepFor(absl::Milliseconds(20))) {
    GetCounter(stub.get(), key, &seen).IgnoreError();
  }
  ASSERT_GE(seen, 2000);

  absl::StatusOr<int> status = (*daemon)->Terminate();
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status << "\n"
                                                               << (*daemon)->log();
  const std::string log = (*daemon)->log();
  EXPECT_EQ((*daemon)->LogLinesWithMsg("final snapshot written").size(), 1u) << log;
  EXPECT_EQ((*daemon)->LogLinesWithMsg("stopped").size(), 1u) << log;

  uint64_t acked = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->err;
    acked += ParseCount(r->out, "acked_shared");
  }

  // The final snapshot holds the value the live table holds.
  int64_t in_snapshot = -1;
  absl::StatusOr<SnapshotMetaInfo> meta = SnapshotFile::ReadNewest(
      absl::StrCat(dir.path(), "/", kSnapshotFile), [&](std::string_view k, int64_t v) {
        if (k == key) in_snapshot = v;
      });
  ASSERT_TRUE(meta.ok()) << meta.status();

  // Restart on the same directory: the table was shut down cleanly and is
  // used as it is; every acknowledged increment is there. At most one call
  // per client was in flight and unacknowledged when the daemon stopped.
  auto restarted = Daemon::Start(options);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_TRUE((*restarted)->WaitForLog("clean shutdown", absl::Seconds(1))) << (*restarted)->log();
  auto stub2 = NewStub((*restarted)->address());
  int64_t value = 0;
  ASSERT_TRUE(GetCounter(stub2.get(), key, &value).ok());
  EXPECT_GE(static_cast<uint64_t>(value), acked);
  EXPECT_LE(static_cast<uint64_t>(value), acked + kClients);
  EXPECT_EQ(in_snapshot, value);
  absl::StatusOr<int> second = (*restarted)->Terminate();
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(WIFEXITED(*second) && WEXITSTATUS(*second) == 0) << (*restarted)->log();
}

TEST(LifecycleTest, RestartOnTheSameFixedPortWorksRightAfterShutdown) {
  ScopedTempDir dir;
  DaemonOptions options;
  options.data_dir = dir.path();
  auto first = Daemon::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string address = (*first)->address();
  {
    auto stub = NewStub(address);
    grpc::ClientContext ctx;
    counters::v1::IncrementRequest req;
    req.set_key("port/k");
    counters::v1::IncrementResponse resp;
    ASSERT_TRUE(stub->Increment(&ctx, req, &resp).ok());
  }
  ASSERT_TRUE((*first)->Terminate().ok());
  options.listen = address;  // connections of the first run may sit in TIME_WAIT
  auto second = Daemon::Start(options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->address(), address);
  auto stub = NewStub(address);
  int64_t value = 0;
  ASSERT_TRUE(GetCounter(stub.get(), "port/k", &value).ok());
  EXPECT_EQ(value, 1);
}

TEST(LifecycleTest, SecondDaemonOnTheSameDataDirectoryFailsNamingTheFirst) {
  auto first = Daemon::Start(DaemonOptions());
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<CommandResult> r =
      RunCommand({CountersdPath(), "--listen=127.0.0.1:0",
                  absl::StrCat("--data-dir=", (*first)->data_dir()), "--handlers=1"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, HasSubstr("is in use by another countersd"));
  EXPECT_THAT(r->err, HasSubstr(absl::StrCat("pid ", (*first)->pid())));
  // The first one is untouched.
  int64_t v;
  auto stub = NewStub((*first)->address());
  EXPECT_EQ(GetCounter(stub.get(), "nothing", &v).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(LifecycleTest, SecondDaemonOnTheSamePortFailsAndTheFirstKeepsServing) {
  auto first = Daemon::Start(DaemonOptions());
  ASSERT_TRUE(first.ok()) << first.status();
  ScopedTempDir other_dir;
  absl::StatusOr<CommandResult> r =
      RunCommand({CountersdPath(), absl::StrCat("--listen=", (*first)->address()),
                  absl::StrCat("--data-dir=", other_dir.path()), "--handlers=1"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_THAT(r->err, HasSubstr("address already in use"));
  // Every connection still reaches the first daemon's handlers.
  for (int i = 0; i < 20; ++i) {
    auto stub = NewStubOnOwnConnection((*first)->address());
    grpc::ClientContext ctx;
    counters::v1::GetStatsResponse stats;
    ASSERT_TRUE(stub->GetStats(&ctx, counters::v1::GetStatsRequest(), &stats).ok());
    std::vector<pid_t> children = (*first)->ChildPids();
    EXPECT_THAT(children, ::testing::Contains(stats.served_by_pid()));
  }
}

TEST(LifecycleTest, BadFlagsExitTwoWithAMessageNamingTheFlag) {
  ScopedTempDir dir;
  const std::string data_dir = absl::StrCat("--data-dir=", dir.path());
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--handlers=0"}, "--handlers"},
      {{"--handlers=many"}, "--handlers"},
      {{"--capacity=0"}, "--capacity"},
      {{"--capacity=-5"}, "--capacity"},
      {{"--log-format=xml"}, "--log-format"},
      {{"--snapshot-interval=1ms"}, "--snapshot-interval"},
      {{"--snapshot-interval=soon"}, "--snapshot-interval"},
      {{"--max-batch=100000"}, "--max-batch"},
      {{"--drain-timeout=-1s"}, "--drain-timeout"},
      {{"--no-such-flag=1"}, "unknown flag"},
      {{"positional"}, "unexpected argument"},
      {{"--listen"}, "needs a value"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {CountersdPath(), "--listen=127.0.0.1:0", data_dir};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    absl::StatusOr<CommandResult> r = RunCommand(argv);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 2) << c.args[0] << ": " << r->err;
    EXPECT_THAT(r->err, HasSubstr(c.message)) << c.args[0];
  }
  // A port that cannot be parsed is a start failure, reported clearly.
  absl::StatusOr<CommandResult> r =
      RunCommand({CountersdPath(), "--listen=127.0.0.1:notaport", data_dir});
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->exit_code, 0);
  EXPECT_THAT(r->err, HasSubstr("bad port"));
}

TEST(LifecycleTest, HelpExplainsEveryFlagAndExitsZero) {
  absl::StatusOr<CommandResult> r = RunCommand({CountersdPath(), "--help"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  for (const char* flag :
       {"--listen", "--data-dir", "--capacity", "--handlers", "--snapshot-interval", "--log-format",
        "--drain-timeout", "--max-batch", "--trust-untrusted-map"}) {
    EXPECT_THAT(r->out, HasSubstr(flag));
  }
  EXPECT_THAT(r->out, ::testing::Not(HasSubstr("flagfile")));  // only countersd's own flags
}

}  // namespace
}  // namespace countersd::testing
