// Issue 3, test 6: corrupt files. A corrupt snapshot half is ignored in
// favour of the other; a corrupt live map is kept aside under a new name,
// never deleted; a non-empty data directory with nothing valid in it makes
// the daemon refuse to start, say why, and leave every byte in place.
//
// Offsets come from the layouts (file_damage.h): the snapshot's valid halves
// are located with SnapshotFile::Check, the map's magic with offsetof.
#include <iostream>
#include <set>
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

std::string MapPath(const ScopedTempDir& dir) { return absl::StrCat(dir.path(), "/", kMapFile); }
std::string SnapPath(const ScopedTempDir& dir) {
  return absl::StrCat(dir.path(), "/", kSnapshotFile);
}

// Both halves valid, newest first, as the two Snapshot calls recorded them.
void ExpectTwoValidHalves(const std::vector<SnapshotHalf>& halves,
                          const std::vector<RecordedSnapshot>& recorded) {
  ASSERT_EQ(halves.size(), 2u);
  ASSERT_EQ(recorded.size(), 2u);
  EXPECT_EQ(halves[0].generation, recorded[1].generation);
  EXPECT_EQ(halves[1].generation, recorded[0].generation);
  // snapshot_file.h: generation g lives in half g % 2.
  EXPECT_EQ(halves[0].index, static_cast<int>(halves[0].generation % 2));
  EXPECT_EQ(halves[1].index, static_cast<int>(halves[1].generation % 2));
  EXPECT_GT(halves[0].bytes, 0u);
}

// Restarts on `dir` (whose map the caller made untrusted) and checks that
// the older snapshot was restored and reported.
void ExpectOlderSnapshotRestored(const ScopedTempDir& dir,
                                 const std::vector<RecordedSnapshot>& recorded) {
  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  auto all = ListAll(*stub, kScenarioPrefix);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, recorded[0].values) << (*daemon)->log();
  std::string line = FindLogLine(
      (*daemon)->log(), {"restor", absl::StrCat("\"generation\":", recorded[0].generation)});
  EXPECT_FALSE(line.empty()) << "no log line reports restoring generation "
                             << recorded[0].generation << ":\n"
                             << (*daemon)->log();
}

absl::Status MakeMapUntrusted(const ScopedTempDir& dir) {
  auto other = OtherBootId();
  if (!other.ok()) return other.status();
  return SetMapBootId(MapPath(dir), *other);
}

TEST(CorruptionTest, CorruptDataInNewestSnapshotHalfIsIgnoredInFavourOfTheOlder) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/2);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  auto halves = ValidSnapshotHalves(SnapPath(dir));
  ASSERT_TRUE(halves.ok()) << halves.status();
  ExpectTwoValidHalves(*halves, *recorded);
  if (HasFatalFailure()) return;

  const SnapshotHalf& newest = (*halves)[0];
  ASSERT_TRUE(FlipByte(SnapPath(dir), newest.data_offset + newest.bytes / 2).ok());
  auto after = ValidSnapshotHalves(SnapPath(dir));
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), 1u) << "the flipped byte was not in the newest half's checked data";
  ASSERT_TRUE(MakeMapUntrusted(dir).ok());

  ExpectOlderSnapshotRestored(dir, *recorded);
}

TEST(CorruptionTest, CorruptMetaPageOfNewestSnapshotIsIgnoredInFavourOfTheOlder) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/2);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  auto halves = ValidSnapshotHalves(SnapPath(dir));
  ASSERT_TRUE(halves.ok()) << halves.status();
  ExpectTwoValidHalves(*halves, *recorded);
  if (HasFatalFailure()) return;

  ASSERT_TRUE(FlipByte(SnapPath(dir), (*halves)[0].meta_offset + 8).ok());
  auto after = ValidSnapshotHalves(SnapPath(dir));
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), 1u) << "the flipped meta byte went unnoticed by SnapshotFile::Check";
  ASSERT_TRUE(MakeMapUntrusted(dir).ok());

  ExpectOlderSnapshotRestored(dir, *recorded);
}

// Same boot, so only validation can tell the map is bad.
TEST(CorruptionTest, MapWithBadMagicIsKeptAsideUnderANewNameAndSnapshotRestored) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/1);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  ASSERT_TRUE(WriteAt(MapPath(dir), MapMagicOffset(), "NOTAMAP!").ok());
  auto damaged = ReadWholeFile(MapPath(dir));
  ASSERT_TRUE(damaged.ok()) << damaged.status();

  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  auto all = ListAll(*stub, kScenarioPrefix);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, recorded->back().values) << (*daemon)->log();

  auto aside = DirEntriesWithPrefix(dir.path(), absl::StrCat(kMapFile, ".", kCorruptKind, "-"));
  ASSERT_EQ(aside.size(), 1u) << ::testing::PrintToString(DirEntries(dir.path())) << "\n"
                              << (*daemon)->log();
  auto kept = ReadWholeFile(absl::StrCat(dir.path(), "/", aside[0]));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(*kept == *damaged) << aside[0] << " is not the corrupt map byte for byte";
  // The log says what it did with the file.
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {aside[0]}).empty())
      << "no log line names " << aside[0] << ":\n"
      << (*daemon)->log();
}

// Issue 10, fault 5: the clean-shutdown flag was outside the header
// checksum, so a map from a host crash (another boot) with the flag set by
// hand was trusted, and served as it was (possibly torn). The flag is now
// under the trust checksum: the map is refused and the snapshot restored.
TEST(CorruptionTest, HandSetCleanShutdownFlagIsRefusedAndSnapshotRestored) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/1);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  ASSERT_TRUE(MakeMapUntrusted(dir).ok());
  ASSERT_TRUE(WriteAt(MapPath(dir), MapCleanShutdownOffset(), std::string("\x01\0\0\0", 4)).ok());

  auto daemon = Daemon::Start(ScenarioDaemonOptions(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  auto all = ListAll(*stub, kScenarioPrefix);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, recorded->back().values) << "the hand-marked map was served:\n"
                                           << (*daemon)->log();
  EXPECT_EQ(DirEntriesWithPrefix(dir.path(), absl::StrCat(kMapFile, ".", kCorruptKind, "-")).size(),
            1u)
      << ::testing::PrintToString(DirEntries(dir.path()));
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"trust fields"}).empty()) << (*daemon)->log();
}

TEST(CorruptionTest, NonEmptyDirectoryWithNothingValidRefusesToStartAndKeepsItsFiles) {
  ScopedTempDir dir;
  auto recorded = RunHistoryAndKill(dir.path(), /*snapshots=*/2);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  auto halves = ValidSnapshotHalves(SnapPath(dir));
  ASSERT_TRUE(halves.ok()) << halves.status();
  ASSERT_EQ(halves->size(), 2u);
  for (const SnapshotHalf& h : *halves) {
    ASSERT_TRUE(FlipByte(SnapPath(dir), h.data_offset + h.bytes / 2).ok());
  }
  ASSERT_TRUE(WriteAt(MapPath(dir), MapMagicOffset(), "NOTAMAP!").ok());
  // The counter files (LOCK is the daemon's own lock file, rewritten by
  // every start).
  auto before = DirContents(dir.path());
  before.erase(kLockFile);
  ASSERT_TRUE(before.contains(kMapFile) && before.contains(kSnapshotFile))
      << ::testing::PrintToString(DirEntries(dir.path()));

  // Twice: a refused start must not leave behind anything that lets the
  // next start come up empty.
  for (int attempt = 0; attempt < 2; ++attempt) {
    SCOPED_TRACE(absl::StrCat("attempt ", attempt));
    auto run =
        RunCommand({CountersdPath(), "--listen=127.0.0.1:0",
                    absl::StrCat("--data-dir=", dir.path()), "--handlers=1", "--log-format=text"},
                   absl::Seconds(60));
    ASSERT_TRUE(run.ok()) << "countersd did not exit by itself: " << run.status();
    EXPECT_NE(run->exit_code, 0) << run->err;
    EXPECT_LT(run->exit_code, 128) << "killed by a signal rather than refusing: " << run->err;
    // It says why, naming the directory, and what the operator can do.
    EXPECT_NE(run->err.find(dir.path()), std::string::npos) << run->err;
    EXPECT_NE(run->err.find("refusing to start"), std::string::npos) << run->err;
    EXPECT_NE(run->err.find("To recover"), std::string::npos) << run->err;
    if (attempt == 0) std::cout << run->err;

    // Every file is still there, byte for byte (a rename aside is fine).
    auto now = DirContents(dir.path());
    std::multiset<std::string> now_bytes;
    for (const auto& [name, bytes] : now) now_bytes.insert(bytes);
    for (const auto& [name, bytes] : before) {
      EXPECT_TRUE(now_bytes.contains(bytes))
          << "the contents of " << name
          << " are gone; now: " << ::testing::PrintToString(DirEntries(dir.path()));
    }
  }
}

}  // namespace
}  // namespace countersd::testing
