// Issue 3, test 5: a host crash, simulated. The daemon is SIGKILLed (no clean
// shutdown flag), then the live map is made untrustworthy the way a reboot or
// a torn write-back would: another boot id in its header, a torn header, a
// short file. On restart the daemon must set the map aside (never delete or
// rewrite it, but for the attach incarnation the start closes first:
// shared/table_attach.cc), restore the last snapshot, and say so; every counter
// acknowledged before the last completed Snapshot call has exactly its
// snapshot-time value, and counters created after it do not exist.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/data_dir.h"
#include "shared/layout.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/file_damage.h"
#include "tests/recovery/increment_load.h"
#include "tests/recovery/recovery_checks.h"
#include "tests/recovery/snapshot_scenario.h"

namespace countersd::testing {
namespace {

// Restarts on `dir` after `damage` was done to the live map, and checks the
// snapshot `want` was restored and the damaged map kept aside as a file
// whose name starts with "counters.map.<aside_kind>-".
void ExpectRestoredAfterDamage(const ScopedTempDir& dir, const RecordedSnapshot& want,
                               const std::string& aside_kind) {
  const std::string map_path = absl::StrCat(dir.path(), "/", kMapFile);
  auto damaged = ReadWholeFile(map_path);
  ASSERT_TRUE(damaged.ok()) << damaged.status();

  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());

  // Exactly the snapshot's counters: the increments after it are gone, and
  // so are the counters created after it.
  auto all = ListAll(*stub, kScenarioPrefix);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, want.values) << (*daemon)->log();
  EXPECT_TRUE(CountersEqual(*stub, want.values));

  // The log says which snapshot it restored.
  std::string line =
      FindLogLine((*daemon)->log(), {"restor", absl::StrCat("\"generation\":", want.generation)});
  EXPECT_FALSE(line.empty()) << "no log line reports restoring generation " << want.generation
                             << ":\n"
                             << (*daemon)->log();

  // The damaged map was kept aside byte for byte (but for the closed
  // incarnation), not deleted or rewritten.
  auto aside = DirEntriesWithPrefix(dir.path(), absl::StrCat(kMapFile, ".", aside_kind, "-"));
  ASSERT_EQ(aside.size(), 1u) << "entries: " << ::testing::PrintToString(DirEntries(dir.path()))
                              << "\n"
                              << (*daemon)->log();
  auto kept = ReadWholeFile(absl::StrCat(dir.path(), "/", aside[0]));
  ASSERT_TRUE(kept.ok()) << kept.status();
  // The one field the start may write before it judges the file: it
  // closes it to the processes attached to the previous daemon (layout.h,
  // TableHeader invariant 8).
  for (std::string* bytes : {&*kept, &*damaged}) {
    constexpr size_t kIncarnation = offsetof(layout::TableHeader, attach_incarnation);
    if (bytes->size() >= kIncarnation + sizeof(uint64_t)) {
      std::fill_n(bytes->begin() + kIncarnation, sizeof(uint64_t), '\0');
    }
  }
  EXPECT_TRUE(*kept == *damaged) << aside[0] << " differs from the map it replaced";

  // A new live map serves from the restored values on.
  const std::string key = absl::StrCat(kScenarioPrefix, 0);
  auto v = IncrementCounter(*stub, key, 1);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, want.values.at(key) + 1);
}

TEST(HostCrashTest, MapFromAnotherBootIsSetAsideAndLastSnapshotRestored) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/2);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  const std::string map_path = absl::StrCat(dir.path(), "/", kMapFile);

  auto current = MapBootId(map_path);
  ASSERT_TRUE(current.ok()) << current.status();
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_NE(*current, *other);
  ASSERT_TRUE(SetMapBootId(map_path, *other).ok());

  ExpectRestoredAfterDamage(dir, recorded->back(), kUntrustedKind);
}

// A torn write-back of the header page: a checksummed header byte differs.
TEST(HostCrashTest, TornMapHeaderIsKeptAsideAsCorruptAndLastSnapshotRestored) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/1);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  const std::string map_path = absl::StrCat(dir.path(), "/", kMapFile);
  ASSERT_TRUE(FlipByte(map_path, MapChecksummedByteOffset()).ok());

  ExpectRestoredAfterDamage(dir, recorded->back(), kCorruptKind);
}

// A map file cut short (e.g. a filesystem that lost its tail).
TEST(HostCrashTest, TruncatedMapIsKeptAsideAsCorruptAndLastSnapshotRestored) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/1);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  const std::string map_path = absl::StrCat(dir.path(), "/", kMapFile);
  auto size = ReadWholeFile(map_path);
  ASSERT_TRUE(size.ok());
  ASSERT_TRUE(Truncate(map_path, size->size() / 2).ok());

  ExpectRestoredAfterDamage(dir, recorded->back(), kCorruptKind);
}

// The Snapshot RPC's contract under concurrent increments: the snapshot
// holds every increment acknowledged before the call started, and nothing no
// client had started by the time it returned:
//   before[k].acked <= restored[k] <= after[k].acked + after[k].unknown
// where before/after are cuts of the clients' bookkeeping taken just before
// the call and just after it returned (unknown includes calls in flight);
// and no atomic batch is in it by half.
TEST(HostCrashTest, SnapshotTakenUnderLoadHoldsEveryIncrementAcknowledgedBeforeTheCall) {
  ScopedTempDir dir;
  std::map<std::string, KeyTally> before, after, batch_before, batch_after;
  const std::vector<std::string> batch_keys = Keys("snapshot-load-batch", 64);
  uint64_t generation = 0;
  int64_t final_acked = 0;
  {
    auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));  // no periodic snapshots
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    IncrementLoad load({.address = (*daemon)->address(),
                        .threads = 4,
                        .keys = Keys("snapshot-load", 16),
                        .call_deadline = absl::Seconds(10)});
    IncrementLoad batch_load({.address = (*daemon)->address(),
                              .threads = 2,
                              .keys = batch_keys,
                              .call_deadline = absl::Seconds(10),
                              .batches = true});
    ASSERT_TRUE(load.WaitForAcked(2000, absl::Seconds(60)));
    ASSERT_TRUE(batch_load.WaitForAcked(100, absl::Seconds(60)));
    before = load.Progress();
    batch_before = batch_load.Progress();
    auto snap = TakeSnapshot(*stub);
    after = load.Progress();
    batch_after = batch_load.Progress();
    ASSERT_TRUE(snap.ok()) << snap.status();
    generation = snap->generation();
    // More increments that the snapshot cannot hold, then a host crash.
    ASSERT_TRUE(load.WaitForAcked(load.acked() + 1000, absl::Seconds(60)));
    (*daemon)->KillAll();
    load.Stop();
    batch_load.Stop();
    for (const auto& [key, t] : load.Tally()) final_acked += t.acked;
  }
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(SetMapBootId(absl::StrCat(dir.path(), "/", kMapFile), *other).ok());

  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  EXPECT_FALSE(
      FindLogLine((*daemon)->log(), {"restor", absl::StrCat("\"generation\":", generation)})
          .empty())
      << (*daemon)->log();
  EXPECT_TRUE(CountersBetween(*stub, before, after));
  EXPECT_TRUE(CountersBetween(*stub, batch_before, batch_after));
  // The snapshot holds no batch by half.
  EXPECT_TRUE(CountersAllEqual(*stub, batch_keys));
  // The values came from the snapshot, not from the live map: the
  // increments acknowledged after it are gone.
  auto all = ListAll(*stub, "snapshot-load/");
  ASSERT_TRUE(all.ok()) << all.status();
  int64_t restored = 0;
  for (const auto& [key, v] : *all) restored += v;
  EXPECT_LT(restored, final_acked);
}

// --trust-untrusted-map: the operator's way out when a map from an earlier
// boot is all there is. The daemon uses the live map as it is (no restore)
// and keeps it in place.
TEST(HostCrashTest, TrustUntrustedMapFlagUsesTheLiveMapFromAnotherBootAsItIs) {
  ScopedTempDir dir;
  const std::string key = "trust/k";
  {
    auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto stub = NewStub((*daemon)->address());
    // Two increments: the only periodic snapshot (interval 1h) is the one
    // taken at start, so the live map (10) and any snapshot (at most 5)
    // always differ.
    ASSERT_TRUE(IncrementCounter(*stub, key, 5).ok());
    ASSERT_TRUE(IncrementCounter(*stub, key, 5).ok());
    (*daemon)->KillAll();
  }
  const std::string map_path = absl::StrCat(dir.path(), "/", kMapFile);
  auto other = OtherBootId();
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(SetMapBootId(map_path, *other).ok());

  DaemonOptions options = ScenarioDaemonOptions(dir.path());
  options.extra_flags = {"--trust-untrusted-map"};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  auto value = GetCounter(*stub, key);
  ASSERT_TRUE(value.ok()) << value.status() << "\n" << (*daemon)->log();
  EXPECT_EQ(*value, 10) << (*daemon)->log();
  EXPECT_TRUE(
      DirEntriesWithPrefix(dir.path(), absl::StrCat(kMapFile, ".", kUntrustedKind, "-")).empty())
      << "the trusted map was set aside anyway";
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"trust-untrusted-map"}).empty()) << (*daemon)->log();
}

}  // namespace
}  // namespace countersd::testing
