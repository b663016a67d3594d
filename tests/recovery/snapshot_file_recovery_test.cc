// The snapshot file through restarts (issue 10, faults 2 and 6): after a
// restore at a larger capacity the snapshot file grows with the table and
// snapshots go on (they stopped for ever before: the halves were too small
// and the writer exited at every start); a bad counters.snap beside a
// trusted map is set aside and a fresh one made (the writer crash-looped);
// a damaged meta page is said in the log when the other half is restored
// (it was skipped in silence).
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/data_dir.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/file_damage.h"
#include "tests/recovery/recovery_checks.h"
#include "tests/recovery/snapshot_scenario.h"

namespace countersd::testing {
namespace {

// Shorter than the Snapshot RPC's own 30 s cap, so that a writer that never
// comes up fails the test with DEADLINE_EXCEEDED instead of UNAVAILABLE.
constexpr absl::Duration kSnapshotDeadline = absl::Seconds(20);

std::string MapPath(const ScopedTempDir& dir) { return absl::StrCat(dir.path(), "/", kMapFile); }
std::string SnapPath(const ScopedTempDir& dir) {
  return absl::StrCat(dir.path(), "/", kSnapshotFile);
}

DaemonOptions WithCapacity(const ScopedTempDir& dir, uint64_t capacity) {
  DaemonOptions options = ScenarioDaemonOptions(dir.path());
  options.capacity = capacity;
  return options;
}

// What a host crash leaves: SIGKILL, then a map from another boot.
void CrashHost(Daemon& daemon, const ScopedTempDir& dir) {
  daemon.KillAll();
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(SetMapBootId(MapPath(dir), *other).ok());
}

// Sets n counters "grow/<i>" to i + base.
void SetCounters(Stub& stub, int n, int64_t base) {
  for (int i = 0; i < n; ++i) {
    auto v = IncrementCounter(stub, absl::StrCat("grow/", i), i + base);
    ASSERT_TRUE(v.ok()) << v.status();
  }
}

TEST(SnapshotFileRecoveryTest, RestoreAtALargerCapacityKeepsSnapshotsWorkingThroughASecondCrash) {
  ScopedTempDir dir;
  {
    auto daemon = Daemon::Start(WithCapacity(dir, 1000));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    SetCounters(*stub, 500, 0);
    auto snap = TakeSnapshot(*stub, kSnapshotDeadline);
    ASSERT_TRUE(snap.ok()) << snap.status();
    CrashHost(**daemon, dir);
  }
  // Restart after the reboot with a larger capacity: the restored table has
  // 5000 slots, the old snapshot file halves for 1000 counters.
  std::map<std::string, int64_t> expected;
  {
    auto daemon = Daemon::Start(WithCapacity(dir, 5000));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    auto restored = ListAll(*stub, "grow/");
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(restored->size(), 500u);
    // 4000 counters: more than the old file's halves could hold.
    SetCounters(*stub, 4000, 7);
    auto snap = TakeSnapshot(*stub, kSnapshotDeadline);
    ASSERT_TRUE(snap.ok()) << snap.status() << "\n" << (*daemon)->log();
    EXPECT_FALSE(FindLogLine((*daemon)->log(), {"too small for the table's capacity"}).empty())
        << (*daemon)->log();
    auto all = ListAll(*stub, "grow/");
    ASSERT_TRUE(all.ok()) << all.status();
    expected = *all;
    CrashHost(**daemon, dir);
  }
  // The second crash loses nothing written before the last Snapshot call.
  auto daemon = Daemon::Start(WithCapacity(dir, 5000));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  auto after = ListAll(*stub, "grow/");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->size(), 4000u);
  EXPECT_TRUE(*after == expected) << "the counters restored after the second crash differ";
  EXPECT_TRUE(DirEntriesWithPrefix(dir.path(), absl::StrCat(kSnapshotFile, kNewFileSuffix)).empty());
}

TEST(SnapshotFileRecoveryTest, InvalidSnapshotFileBesideATrustedMapIsSetAsideAndSnapshotsGoOn) {
  ScopedTempDir dir;
  {
    auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    SetCounters(*stub, 50, 0);
    auto code = (*daemon)->Terminate();  // clean: the map is trusted
    ASSERT_TRUE(code.ok()) << code.status();
  }
  auto size = ReadWholeFile(SnapPath(dir));
  ASSERT_TRUE(size.ok()) << size.status();
  const std::string garbage(size->size(), 'G');
  ASSERT_TRUE(WriteAt(SnapPath(dir), 0, garbage).ok());

  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  auto snap = TakeSnapshot(*stub, kSnapshotDeadline);
  ASSERT_TRUE(snap.ok()) << snap.status() << "\n" << (*daemon)->log();
  auto aside = DirEntriesWithPrefix(dir.path(), absl::StrCat(kSnapshotFile, ".", kCorruptKind, "-"));
  ASSERT_EQ(aside.size(), 1u) << ::testing::PrintToString(DirEntries(dir.path()));
  auto kept = ReadWholeFile(absl::StrCat(dir.path(), "/", aside[0]));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(*kept == garbage) << "the set-aside file is not the file found";
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"\"level\":\"error\"", "kept it aside",
                                              aside[0]})
                   .empty())
      << (*daemon)->log();
  // No respawn loop: the aggregator started once.
  EXPECT_EQ((*daemon)->LogLinesWithMsg("started aggregator").size(), 1u) << (*daemon)->log();
}

TEST(SnapshotFileRecoveryTest, DamagedMetaPageIsLoggedWhenTheOtherHalfIsRestored) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/2);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  auto halves = ValidSnapshotHalves(SnapPath(dir));
  ASSERT_TRUE(halves.ok()) << halves.status();
  ASSERT_EQ(halves->size(), 2u);
  const SnapshotHalf newest = (*halves)[0];
  ASSERT_TRUE(FlipByte(SnapPath(dir), newest.meta_offset + 20).ok());  // its generation field
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(SetMapBootId(MapPath(dir), *other).ok());

  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  auto all = ListAll(*stub, kScenarioPrefix);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, (*recorded)[0].values);
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"ignoring invalid snapshot half",
                                              absl::StrCat("\"half\":", newest.index),
                                              "meta checksum mismatch"})
                   .empty())
      << (*daemon)->log();
}

}  // namespace
}  // namespace countersd::testing
