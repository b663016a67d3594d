// Validation at open (table_file.cc): a map file whose slots break Slot
// invariant 2 (layout.h), or that comes from a host of the other byte
// order, is refused by Open and OpenReadOnly with a message that says what
// is wrong; it is never served.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "shared/layout.h"
#include "shared/table_internal.h"  // FirstProbe: the probe sequence is what is checked
#include "tests/shared/map_image.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

class TableValidation : public TempDirTest {
 protected:
  // Creates a table holding "victim" = 7 and two other counters, closes it,
  // and returns the file offset of victim's slot.
  off_t CreateWithVictim() {
    {
      auto t = MustCreate(1000);
      EXPECT_TRUE(t->Increment("before", 1).ok());
      EXPECT_TRUE(t->Increment("victim", 7).ok());
      EXPECT_TRUE(t->Increment("after", 2).ok());
    }
    int fd = open(Path("t.map").c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    layout::TableHeader h;
    EXPECT_EQ(pread(fd, &h, sizeof h, 0), static_cast<ssize_t>(sizeof h));
    const uint64_t slots = uint64_t{h.regions} * h.region_slots;
    off_t found = -1;
    for (uint64_t i = 0; i < slots && found < 0; ++i) {
      layout::Slot s;
      const off_t off = static_cast<off_t>(h.slots_offset + i * sizeof(layout::Slot));
      EXPECT_EQ(pread(fd, &s, sizeof s, off), static_cast<ssize_t>(sizeof s));
      if (s.state == layout::kLive && s.stored_key() == "victim") found = off;
    }
    close(fd);
    EXPECT_GE(found, 0) << "victim's slot not found";
    return found;
  }

  // Both opens refuse the file, naming `what`.
  void ExpectRefused(const std::string& what) {
    for (bool read_only : {true, false}) {
      absl::Status st = read_only ? CounterTable::OpenReadOnly(Path("t.map")).status()
                                  : CounterTable::Open(Path("t.map")).status();
      EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
      EXPECT_NE(std::string(st.message()).find(what), std::string::npos)
          << (read_only ? "OpenReadOnly: " : "Open: ") << st;
    }
  }
};

TEST_F(TableValidation, AnIntactFileOpensWithEveryCounter) {
  CreateWithVictim();
  auto t = CounterTable::Open(Path("t.map"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->Get("victim"), 7);
  EXPECT_EQ((*t)->size(), 3u);
}

TEST_F(TableValidation, KeyLengthBeyondTheSlotIsRefused) {
  const off_t slot = CreateWithVictim();
  const uint16_t len = 65535;
  Poke(Path("t.map"), slot + offsetof(layout::Slot, key_len), &len, sizeof len);
  ExpectRefused("key length 65535");
}

TEST_F(TableValidation, ZeroKeyLengthIsRefused) {
  const off_t slot = CreateWithVictim();
  const uint16_t len = 0;
  Poke(Path("t.map"), slot + offsetof(layout::Slot, key_len), &len, sizeof len);
  ExpectRefused("key length 0");
}

TEST_F(TableValidation, KeyWithAControlByteIsRefused) {
  const off_t slot = CreateWithVictim();
  Poke(Path("t.map"), slot + offsetof(layout::Slot, key) + 2, "\x01", 1);
  ExpectRefused("invalid key");
}

TEST_F(TableValidation, HashThatDoesNotMatchItsKeyIsRefused) {
  const off_t slot = CreateWithVictim();
  Poke(Path("t.map"), slot + offsetof(layout::Slot, key), "V", 1);  // "Victim"
  ExpectRefused("hash that does not match its key");
}

TEST_F(TableValidation, UnknownSlotStateIsRefused) {
  const off_t slot = CreateWithVictim();
  const uint32_t state = 7;
  Poke(Path("t.map"), slot + offsetof(layout::Slot, state), &state, sizeof state);
  ExpectRefused("unknown state 7");
}

TEST_F(TableValidation, AnInsertCutShortIsLeftToCrashRepair) {
  // A writer died inserting victim: the region's undo record names the slot,
  // whose seq is odd and whose contents may be half written. Repair (not
  // validation) settles it: the insert is rolled back.
  CreateWithVictim();
  {
    MapImage map(Path("t.map"));
    for (uint32_t r = 0; r < map.regions(); ++r) {
      const int64_t i = map.Find(r, "victim");
      if (i < 0) continue;
      map.slot(r, i)->seq.store(3);
      map.slot(r, i)->key_len = 65535;
      map.region(r)->inserting = static_cast<uint32_t>(i) + 1;
    }
  }
  ASSERT_TRUE(CounterTable::OpenReadOnly(Path("t.map")).ok());
  auto t = CounterTable::Open(Path("t.map"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Get("victim").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*t)->size(), 2u);
}

// An odd seq alone excuses nothing: the only seqlocked rewrites that can be
// cut short without an undo record (a delete, a repair) keep the key whole,
// so such a slot is judged like any other. Before, it was skipped, and crash
// repair then served its damaged key.
TEST_F(TableValidation, ASlotWithAnOddSeqButNoUndoRecordIsJudged) {
  const off_t slot = CreateWithVictim();
  const uint32_t odd_seq = 3;
  const uint16_t len = 65535;
  Poke(Path("t.map"), slot + offsetof(layout::Slot, seq), &odd_seq, sizeof odd_seq);
  Poke(Path("t.map"), slot + offsetof(layout::Slot, key_len), &len, sizeof len);
  ExpectRefused("key length 65535");
}

// Found by map_file_fuzz: crash repair wrote through an `inserting` undo
// record naming a slot beyond the region.
TEST_F(TableValidation, InsertUndoRecordBeyondTheRegionIsRefused) {
  MustCreate(100);
  const uint32_t inserting = 0xffffffff;
  Poke(Path("t.map"), layout::kPage + offsetof(layout::RegionShared, inserting), &inserting,
       sizeof inserting);
  ExpectRefused("names insert slot");
}

TEST_F(TableValidation, MapOfTheOtherByteOrderIsRefusedAsSuch) {
  MustCreate(100);
  const uint32_t swapped = __builtin_bswap32(layout::kLayoutVersion);
  Poke(Path("t.map"), offsetof(layout::TableHeader, layout_version), &swapped, sizeof swapped);
  ExpectRefused("other byte order");
}

// A table of 10 whose header says 9, with both checksums redone (capacity 9
// implies the same geometry): more live counters than the capacity, which
// no reservation could have let in.
TEST_F(TableValidation, MoreCountersThanTheCapacityIsRefused) {
  {
    auto t = MustCreate(10);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), 1).ok());
  }
  {
    MapImage map(Path("t.map"));
    map.header()->capacity = 9;
    map.header()->header_crc = layout::HeaderCrc(*map.header());
    map.header()->trust_crc = layout::TrustCrc(*map.header());
  }
  ExpectRefused("10 live counters, more than its capacity 9");
}

// ---- Probe chains, duplicates and counts (issue 10, fault 5) ----

class DenseRegion : public TableValidation {
 protected:
  // A table whose region 0 is dense (150 of its slots live), so that its
  // probe chains are long; closed. n_ is the region's slot count.
  void SetUp() override {
    TableValidation::SetUp();
    auto t = MustCreate(1000);
    int placed = 0;
    for (int i = 0; placed < 150; ++i) {
      std::string k = absl::StrCat("dense-", i);
      if (t->StripeOf(k) != 0) continue;
      ASSERT_TRUE(t->Increment(k, i).ok());
      ++placed;
    }
    ASSERT_TRUE(t->Increment("elsewhere", 1).ok());
    ASSERT_TRUE(t->MarkCleanShutdown().ok());
    n_ = MapImage(Path("t.map")).region_slots();
  }
  uint32_t Next(uint32_t i) const { return i + 1 == n_ ? 0 : i + 1; }
  uint32_t Prev(uint32_t i) const { return i == 0 ? n_ - 1 : i - 1; }
  uint32_t Home(const layout::Slot& s) const { return table_internal::FirstProbe(s.hash, n_); }
  // Empties slot i of region 0, and keeps the region's counts right, so
  // that only the probe chains can tell.
  static void EmptySlotKeepingCounts(MapImage& map, uint32_t i) {
    layout::Slot* s = map.slot(0, i);
    if (s->state == layout::kLive) map.region(0)->live.fetch_sub(1);
    if (s->state != layout::kEmpty) --map.region(0)->used;
    std::memset(static_cast<void*>(s), 0, sizeof *s);
  }
  uint32_t n_ = 0;
};

TEST_F(DenseRegion, AKeyCutOffFromItsHomeSlotIsRefused) {
  {
    MapImage map(Path("t.map"));
    // A live key away from its home: the slot before it is on its chain.
    uint32_t victim = n_;
    for (uint32_t i = 0; i < n_ && victim == n_; ++i) {
      if (map.slot(0, i)->state == layout::kLive && Home(*map.slot(0, i)) != i) victim = i;
    }
    ASSERT_LT(victim, n_) << "region 0 has no displaced key";
    EmptySlotKeepingCounts(map, Prev(victim));
  }
  ExpectRefused("cannot be reached from its home slot");
}

// The red team's form: 30 slots zeroed inside probe chains. List showed a
// key that Get could not find, and an increment then made it a second time.
TEST_F(DenseRegion, ThirtySlotsZeroedInsideProbeChainsAreRefused) {
  {
    MapImage map(Path("t.map"));
    int zeroed = 0;
    for (uint32_t i = 0; i < n_ && zeroed < 30; ++i) {
      if (map.slot(0, i)->state == layout::kLive && map.slot(0, Next(i))->state == layout::kLive) {
        std::memset(static_cast<void*>(map.slot(0, i)), 0, sizeof(layout::Slot));
        ++zeroed;
      }
    }
    ASSERT_EQ(zeroed, 30);
  }
  ExpectRefused("the file is corrupt");
}

TEST_F(DenseRegion, ADuplicateKeyIsRefused) {
  {
    MapImage map(Path("t.map"));
    // A copy of a live slot at the end of its cluster: reachable from its
    // home, like the original.
    uint32_t i = 0;
    while (map.slot(0, i)->state != layout::kLive) ++i;
    uint32_t e = Next(i);
    while (map.slot(0, e)->state != layout::kEmpty) e = Next(e);
    std::memcpy(static_cast<void*>(map.slot(0, e)), map.slot(0, i), sizeof(layout::Slot));
    map.region(0)->live.fetch_add(1);
    ++map.region(0)->used;
  }
  ExpectRefused("duplicate");
}

TEST_F(DenseRegion, RegionCountsThatDisagreeWithItsSlotsAreRefused) {
  {
    MapImage map(Path("t.map"));
    // The last key of a cluster: emptying it breaks no chain, only the count.
    uint32_t i = 0;
    while (!(map.slot(0, i)->state == layout::kLive &&
             map.slot(0, Next(i))->state == layout::kEmpty)) {
      ++i;
    }
    std::memset(static_cast<void*>(map.slot(0, i)), 0, sizeof(layout::Slot));
  }
  ExpectRefused("region 0 records");
}

// The counts of a region whose stripe a dead process holds may be mid-change:
// they are recounted by repair, not judged.
TEST_F(DenseRegion, CountsOfARegionHeldByADeadProcessAreLeftToRepair) {
  {
    MapImage map(Path("t.map"));
    map.region(0)->live.fetch_add(1);
    map.region(0)->lock.owner.store(999999);
  }
  ASSERT_TRUE(CounterTable::OpenReadOnly(Path("t.map")).ok());
  auto t = CounterTable::Open(Path("t.map"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->size(), 151u);
}

}  // namespace
}  // namespace countersd
