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

TEST_F(TableValidation, ASlotMidRewriteIsLeftToCrashRepair) {
  // An odd seq means a writer died while rewriting the slot: its contents
  // may be half written, and repair (not validation) settles it.
  const off_t slot = CreateWithVictim();
  const uint32_t odd_seq = 3;
  const uint16_t len = 65535;
  Poke(Path("t.map"), slot + offsetof(layout::Slot, seq), &odd_seq, sizeof odd_seq);
  Poke(Path("t.map"), slot + offsetof(layout::Slot, key_len), &len, sizeof len);
  EXPECT_TRUE(CounterTable::OpenReadOnly(Path("t.map")).ok());
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

}  // namespace
}  // namespace countersd
