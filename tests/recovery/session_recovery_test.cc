// Exactly-once sessions (WriteOptions) across what ends every process: a
// SIGKILL of the whole daemon and a restart on the same map, and a host
// crash (the map from another boot: the last snapshot restored). A retry of
// a write the daemon still holds is answered from its session and not
// applied again; a retry of a write the crash lost (made after the
// restored snapshot) is applied, once.
#include <grpcpp/grpcpp.h>

#include <string>

#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/data_dir.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/file_damage.h"
#include "tests/recovery/snapshot_scenario.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;

const std::string kSession(16, 'S');

// Increments `key` by `delta` as write `sequence` of kSession.
absl::StatusOr<int64_t> IncrementAs(CounterService::Stub* stub, const std::string& key,
                                    int64_t delta, uint64_t sequence) {
  int64_t value = 0;
  grpc::Status st =
      IncrementWithOptions(stub, key, delta, SessionOptions(kSession, sequence), &value);
  if (!st.ok()) return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  return value;
}

void TakeSnapshot(CounterService::Stub* stub) {
  counters::v1::SnapshotResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  grpc::Status st = stub->Snapshot(&ctx, counters::v1::SnapshotRequest(), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
}

// A daemon on `dir` writes 1..3 to "k" (+1, +10, +100), a snapshot, then 4
// (+1000), and every process of it is SIGKILLed.
void WriteHistoryAndKill(const std::string& dir) {
  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  ASSERT_EQ(*IncrementAs(stub.get(), "k", 1, 1), 1);
  ASSERT_EQ(*IncrementAs(stub.get(), "k", 10, 2), 11);
  ASSERT_EQ(*IncrementAs(stub.get(), "k", 100, 3), 111);
  TakeSnapshot(stub.get());
  ASSERT_EQ(*IncrementAs(stub.get(), "k", 1000, 4), 1111);
  (*daemon)->KillAll();
}

TEST(SessionRecoveryTest, ADaemonKilledAndRestartedStillAnswersRetriesFromTheSession) {
  ScopedTempDir dir;
  WriteHistoryAndKill(dir.path());
  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  // Every write is in the map: each retry gets its first answer.
  EXPECT_EQ(*IncrementAs(stub.get(), "k", 1000, 4), 1111);
  EXPECT_EQ(*IncrementAs(stub.get(), "k", 1, 1), 1);
  EXPECT_EQ(CounterValue(stub.get(), "k"), 1111) << (*daemon)->log();
  EXPECT_EQ(*IncrementAs(stub.get(), "k", 10000, 5), 11111);
}

TEST(SessionRecoveryTest, AfterAHostCrashALostWriteIsAppliedOnceAndAKeptOneIsNotAgain) {
  ScopedTempDir dir;
  WriteHistoryAndKill(dir.path());
  // As after a reboot: the map's boot id is another boot's, so the start
  // sets it aside and restores the snapshot (writes 1 to 3 and their
  // session; not write 4).
  const std::string map_path = dir.path() + "/" + kMapFile;
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(SetMapBootId(map_path, *other).ok());
  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"restored snapshot generation", "1 sessions"}).empty())
      << (*daemon)->log();
  auto stub = NewStub((*daemon)->address());
  EXPECT_EQ(CounterValue(stub.get(), "k"), 111);
  EXPECT_EQ(*IncrementAs(stub.get(), "k", 100, 3), 111) << "a kept write was applied again";
  EXPECT_EQ(*IncrementAs(stub.get(), "k", 1000, 4), 1111) << "the lost write, applied once";
  EXPECT_EQ(*IncrementAs(stub.get(), "k", 1000, 4), 1111);
  EXPECT_EQ(CounterValue(stub.get(), "k"), 1111);
}

}  // namespace
}  // namespace countersd::testing
