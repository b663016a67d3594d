// Issue 10, fault 5: what decides whether a map is trusted at start. The
// clean-shutdown flag and the boot id were outside the header checksum, so a
// hand-set flag was trusted; and a copy of a running data directory, started
// on the same boot, was trusted by its boot id and served torn batches. Now
// the trust fields are under their own checksum, the file's device and inode
// are recorded with them, and a map of the previous layout is refused. Each
// refusal sends the start-up (server/table_selection.cc) to the snapshot:
// checked end to end with SelectAndOpenTable.
#include <zlib.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/table_selection.h"
#include "shared/counter_table.h"
#include "shared/data_dir.h"
#include "shared/layout.h"
#include "shared/table_internal.h"
#include "shared/snapshot_file.h"
#include "tests/shared/map_image.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

class TableTrust : public TempDirTest {
 protected:
  std::string MapPath() const { return Path(kMapFile); }
  std::string SnapPath() const { return Path(kSnapshotFile); }

  // A map holding k0..k199 = i, left open (as by a running daemon) or
  // shut down cleanly.
  std::unique_ptr<CounterTable> MakeMap(bool clean) {
    auto t = MustCreate(1000, kMapFile);
    for (int i = 0; i < 200; ++i) EXPECT_TRUE(t->Set(absl::StrCat("k", i), i).ok());
    if (clean) {
      EXPECT_TRUE(t->MarkCleanShutdown().ok());
      t.reset();
    }
    return t;
  }
  // A snapshot holding k0..k199 = 1000 + i: a table restored from it tells
  // itself apart from the map.
  void MakeSnapshot() {
    std::string records;
    for (int i = 0; i < 200; ++i) AppendSnapshotRecord(&records, absl::StrCat("k", i), 1000 + i);
    auto f = SnapshotFile::OpenForWrite(SnapPath(), 1000);
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE((*f)->Write(records, 200, 1000).ok());
  }
  void ExpectRefused(const std::string& what) {
    for (bool read_only : {true, false}) {
      absl::Status st = read_only ? CounterTable::OpenReadOnly(MapPath()).status()
                                  : CounterTable::Open(MapPath()).status();
      EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
      EXPECT_NE(std::string(st.message()).find(what), std::string::npos)
          << (read_only ? "OpenReadOnly: " : "Open: ") << st;
    }
  }
  // Starts as the daemon does on dir_; expects the snapshot restored and
  // counters.map kept aside as `kind`.
  void ExpectSnapshotRestored(const std::string& kind) {
    TableSelectionOptions opt;
    opt.data_dir = dir_;
    opt.capacity = 1000;
    auto t = SelectAndOpenTable(opt);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ((*t)->size(), 200u);
    EXPECT_EQ(*(*t)->Get("k7"), 1007) << "the map was served, not the snapshot";
    int aside = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      if (absl::StartsWith(e.path().filename().string(), absl::StrCat(kMapFile, ".", kind, "-")))
        ++aside;
    }
    EXPECT_EQ(aside, 1) << "counters.map was not kept aside as " << kind;
  }
};

TEST_F(TableTrust, AHandSetCleanShutdownFlagIsRefused) {
  MakeMap(/*clean=*/false).reset();
  const uint32_t one = 1;
  Poke(MapPath(), offsetof(layout::TableHeader, clean_shutdown), &one, sizeof one);
  ExpectRefused("trust fields");
}

TEST_F(TableTrust, AHandEditedBootIdIsRefused) {
  MakeMap(/*clean=*/false).reset();
  Poke(MapPath(), offsetof(layout::TableHeader, boot_id), "0", 1);
  ExpectRefused("trust fields");
}

TEST_F(TableTrust, AMapOfLayoutVersionOneIsRefusedSayingSo) {
  MakeMap(/*clean=*/true);
  {
    MapImage map(MapPath());
    map.header()->layout_version = 1;
    map.header()->header_crc =
        static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(map.header()),
                                    static_cast<uInt>(offsetof(layout::TableHeader, header_crc))));
  }
  ExpectRefused("layout version 1");
}

// Makes the map at `path` what countersd of an older layout left: layout 2
// (before local attach: no attach slots) or 3 (before sessions), its
// version, size and checksums. `grown` leaves the file at this layout's
// size: an upgrade cut short before its header.
void MakeOlderLayout(const std::string& path, uint32_t version, bool grown = false) {
  uint64_t end;
  {
    MapImage map(path);
    layout::TableHeader* h = map.header();
    end = table_internal::LayoutEnd(table_internal::ComputeGeometry(h->capacity), version);
    h->layout_version = version;
    h->file_size = end;
    h->header_crc = layout::HeaderCrc(*h);
    h->trust_crc = layout::TrustCrc(*h);
  }
  if (!grown) std::filesystem::resize_file(path, end);
}

class OlderLayout : public TableTrust, public ::testing::WithParamInterface<uint32_t> {};
INSTANTIATE_TEST_SUITE_P(Layouts, OlderLayout,
                         ::testing::Values(layout::kLayoutVersionBeforeAttach,
                                           layout::kLayoutVersionBeforeSessions));

TEST_P(OlderLayout, IsReadAsItIsAndUpgradedInPlaceByTheWritableOpen) {
  MakeMap(/*clean=*/true);
  MakeOlderLayout(MapPath(), GetParam());
  const auto old_size = std::filesystem::file_size(MapPath());
  {
    auto ro = CounterTable::OpenReadOnly(MapPath());
    ASSERT_TRUE(ro.ok()) << ro.status();
    EXPECT_EQ((*ro)->Info().layout_version, GetParam());
    EXPECT_EQ(*(*ro)->Get("k7"), 7);
  }
  EXPECT_EQ(std::filesystem::file_size(MapPath()), old_size) << "a read-only open changed it";
  auto t = CounterTable::Open(MapPath());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Info().layout_version, layout::kLayoutVersion);
  EXPECT_TRUE((*t)->Info().clean_shutdown);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(*(*t)->Get(absl::StrCat("k", i)), i);
  EXPECT_FALSE((*t)->AnyAttached());
  EXPECT_EQ(*(*t)->Increment("k7", 1), 8);
  // The upgraded map has its sessions.
  (*t)->ConfigureSessions(kSessionSlots, absl::Hours(1));
  const std::string id(kSessionIdBytes, 's');
  const CounterTable::KeyDelta op{"k7", 1};
  ASSERT_TRUE((*t)->IncrementBatch({&op, 1}, SessionWrite{id, 1, 1}).ok());
  auto dup = (*t)->IncrementBatch({&op, 1}, SessionWrite{id, 1, 1});
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(*(*t)->Get("k7"), 9);
  t->reset();
  auto again = CounterTable::OpenReadOnly(MapPath());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Info().layout_version, layout::kLayoutVersion);
}

TEST_P(OlderLayout, AnUpgradeCutShortBeforeItsHeaderIsFinishedAtTheNextOpen) {
  MakeMap(/*clean=*/true);
  MakeOlderLayout(MapPath(), GetParam(), /*grown=*/true);
  auto t = CounterTable::Open(MapPath());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Info().layout_version, layout::kLayoutVersion);
  EXPECT_EQ(*(*t)->Get("k199"), 199);
}

TEST_F(TableTrust, AnUntrustedLayout2MapIsSetAsideUnmodified) {
  MakeMap(/*clean=*/false).reset();
  MakeOlderLayout(MapPath(), layout::kLayoutVersionBeforeAttach);
  Poke(MapPath(), offsetof(layout::TableHeader, boot_id), "another-boot", 12);
  {
    MapImage map(MapPath());
    map.header()->trust_crc = layout::TrustCrc(*map.header());
  }
  MakeSnapshot();
  const auto before = std::filesystem::file_size(MapPath());
  TableSelectionOptions opt;
  opt.data_dir = dir_;
  opt.capacity = 1000;
  auto t = SelectAndOpenTable(opt);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->Get("k7"), 1007) << "the snapshot was not restored";
  bool found = false;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (!absl::StrContains(e.path().filename().string(), ".untrusted-")) continue;
    found = true;
    EXPECT_EQ(std::filesystem::file_size(e.path()), before) << "the map set aside was changed";
    auto ro = CounterTable::OpenReadOnly(e.path());
    ASSERT_TRUE(ro.ok()) << ro.status();
    EXPECT_EQ((*ro)->Info().layout_version, 2u);
  }
  EXPECT_TRUE(found);
}

TEST_F(TableTrust, ACopyOfARunningMapIsNotTrustedByItsBootId) {
  auto running = MakeMap(/*clean=*/false);
  std::filesystem::copy_file(MapPath(), Path("copy.map"));
  auto original = CounterTable::OpenReadOnly(MapPath());
  ASSERT_TRUE(original.ok()) << original.status();
  auto copy = CounterTable::OpenReadOnly(Path("copy.map"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_FALSE((*original)->Info().boot_id.empty());
  EXPECT_FALSE((*original)->Info().copied);
  EXPECT_TRUE((*copy)->Info().copied);
  EXPECT_TRUE((*copy)->Info().boot_id.empty()) << (*copy)->Info().boot_id;
}

// A cleanly shut down map is complete wherever it lies: a copy of it (a
// backup put back) is trusted by its flag, and its new owner records it.
TEST_F(TableTrust, ACopyOfACleanlyShutDownMapIsTrustedAndAdopted) {
  MakeMap(/*clean=*/true);
  std::filesystem::copy_file(MapPath(), Path("copy.map"));
  auto copy = CounterTable::Open(Path("copy.map"));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_TRUE((*copy)->Info().clean_shutdown);
  EXPECT_EQ(*(*copy)->Get("k7"), 7);
  copy->reset();
  auto again = CounterTable::OpenReadOnly(Path("copy.map"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE((*again)->Info().copied);
  EXPECT_FALSE((*again)->Info().boot_id.empty());
}

// ---- End to end through the start-up's table selection ----

TEST_F(TableTrust, StartUpRestoresTheSnapshotForACopiedRunningDataDirectory) {
  MakeSnapshot();
  auto running = MakeMap(/*clean=*/false);
  // The copy: another directory with the same files, on the same boot.
  const std::string original = dir_ + ".orig";
  std::filesystem::rename(dir_, original);
  std::filesystem::create_directory(dir_);
  std::filesystem::copy_file(original + "/" + kMapFile, MapPath());
  std::filesystem::copy_file(original + "/" + kSnapshotFile, SnapPath());
  ExpectSnapshotRestored(kUntrustedKind);
  std::filesystem::remove_all(original);
}

TEST_F(TableTrust, StartUpRestoresTheSnapshotWhenSlotsOfACleanMapWereZeroed) {
  MakeSnapshot();
  MakeMap(/*clean=*/true);
  {
    // The red team's form: 8 KiB of slots zeroed from a live one on.
    MapImage map(MapPath());
    const int64_t i = map.Find(0, [&] {
      for (uint32_t k = 0; k < map.region_slots(); ++k) {
        if (map.slot(0, k)->state == layout::kLive)
          return std::string(map.slot(0, k)->stored_key());
      }
      return std::string();
    }());
    ASSERT_GE(i, 0);
    std::memset(static_cast<void*>(map.slot(0, static_cast<uint32_t>(i))), 0, 8192);
  }
  ExpectSnapshotRestored(kCorruptKind);
}

TEST_F(TableTrust, StartUpRestoresTheSnapshotForAHandSetCleanShutdownFlag) {
  MakeSnapshot();
  MakeMap(/*clean=*/false).reset();
  const uint32_t one = 1;
  Poke(MapPath(), offsetof(layout::TableHeader, clean_shutdown), &one, sizeof one);
  ExpectSnapshotRestored(kCorruptKind);
}

}  // namespace
}  // namespace countersd
