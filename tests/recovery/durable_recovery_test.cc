// Durable writes (WriteOptions.durable) across a host crash: the daemon runs
// with --snapshot-interval=1h, so no snapshot holds them; every process is
// SIGKILLed and the map made another boot's, as after a reboot. The restart
// restores the (older) snapshot and replays the log of durable writes: every
// durable write that was acknowledged is there, exactly once.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/data_dir.h"
#include "shared/write_ahead_log.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/file_damage.h"
#include "tests/recovery/snapshot_scenario.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;

grpc::Status DurableIncrement(CounterService::Stub* stub, const std::string& key, int64_t delta,
                              const std::string& session = "", uint64_t sequence = 0) {
  return IncrementWithOptions(stub, key, delta, SessionOptions(session, sequence, true));
}

void RebootAndRestartCheck(const std::string& dir, int64_t want_total, int keys) {
  const std::string map_path = dir + "/" + kMapFile;
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(SetMapBootId(map_path, *other).ok());
  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"restored snapshot", "records of the log"}).empty() &&
               FindLogLine((*daemon)->log(), {"created new table", "durable_log_records"}).empty())
      << (*daemon)->log();
  auto stub = NewStub((*daemon)->address());
  int64_t total = 0;
  for (int k = 0; k < keys; ++k) total += CounterValue(stub.get(), absl::StrCat("durable/", k));
  EXPECT_EQ(total, want_total) << (*daemon)->log();
}

TEST(DurableRecoveryTest, EveryAcknowledgedDurableWriteSurvivesAHostCrashExactlyOnce) {
  ScopedTempDir dir;
  constexpr int kThreads = 8, kPerThread = 40, kKeys = 5;
  std::atomic<int64_t> acked{0};
  std::atomic<int> failures{0};
  {
    auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    // One snapshot before: the restart restores it and replays the rest.
    auto stub = NewStub((*daemon)->address());
    ASSERT_TRUE(DurableIncrement(stub.get(), "durable/0", 1000).ok());
    acked += 1000;
    {
      counters::v1::SnapshotResponse resp;
      grpc::ClientContext ctx;
      ASSERT_TRUE(stub->Snapshot(&ctx, counters::v1::SnapshotRequest(), &resp).ok());
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto own = NewStubOnOwnConnection((*daemon)->address());
        for (int i = 0; i < kPerThread; ++i) {
          const int64_t delta = t * 1000 + i + 1;
          if (DurableIncrement(own.get(), absl::StrCat("durable/", (t + i) % kKeys), delta).ok()) {
            acked += delta;
          } else {
            ++failures;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    (*daemon)->KillAll();  // no clean shutdown, no final snapshot
  }
  ASSERT_EQ(failures.load(), 0);
  RebootAndRestartCheck(dir.path(), acked.load(), kKeys);
}

TEST(DurableRecoveryTest, DurableWritesBeforeAnySnapshotSurviveAHostCrash) {
  ScopedTempDir dir;
  int64_t acked = 0;
  {
    auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    for (int i = 1; i <= 20; ++i) {
      ASSERT_TRUE(DurableIncrement(stub.get(), absl::StrCat("durable/", i % 3), i).ok());
      acked += i;
    }
    (*daemon)->KillAll();
  }
  // No snapshot was ever written: the map from another boot is set aside,
  // and the log alone rebuilds the counters.
  std::filesystem::remove(dir.path() + "/" + kSnapshotFile);
  RebootAndRestartCheck(dir.path(), acked, 3);
}

TEST(DurableRecoveryTest, ARetriedDurableWriteAfterAHostCrashIsNotAppliedTwice) {
  ScopedTempDir dir;
  const std::string session(16, 'D');
  {
    auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    ASSERT_TRUE(DurableIncrement(stub.get(), "durable/0", 5, session, 1).ok());
    ASSERT_TRUE(DurableIncrement(stub.get(), "durable/0", 7, session, 2).ok());
    (*daemon)->KillAll();
  }
  const std::string map_path = dir.path() + "/" + kMapFile;
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(SetMapBootId(map_path, *other).ok());
  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  EXPECT_EQ(CounterValue(stub.get(), "durable/0"), 12);
  // The log held each write's session entry too: the retries are answered.
  EXPECT_TRUE(DurableIncrement(stub.get(), "durable/0", 7, session, 2).ok());
  EXPECT_TRUE(DurableIncrement(stub.get(), "durable/0", 5, session, 1).ok());
  EXPECT_EQ(CounterValue(stub.get(), "durable/0"), 12) << (*daemon)->log();
}

TEST(DurableRecoveryTest, ARestartPutsTheLogInASnapshotAndRemovesItsSegments) {
  ScopedTempDir dir;
  {
    auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    ASSERT_TRUE(DurableIncrement(stub.get(), "durable/0", 3).ok());
    (*daemon)->KillAll();
  }
  auto records = ReadWal(dir.path());
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), 1u);
  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  EXPECT_EQ(CounterValue(stub.get(), "durable/0"), 3);
  auto after = ReadWal(dir.path());
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty()) << (*daemon)->log();
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"in a snapshot now"}).empty()) << (*daemon)->log();
}

}  // namespace
}  // namespace countersd::testing
