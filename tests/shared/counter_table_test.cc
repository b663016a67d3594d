#include "shared/counter_table.h"

#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/layout.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using Table = TempDirTest;

TEST_F(Table, IncrementCreatesAtZeroAndAddsDelta) {
  auto t = MustCreate(1000);
  EXPECT_EQ(*t->Increment("a", 1), 1);
  EXPECT_EQ(*t->Increment("a", 41), 42);
  EXPECT_EQ(*t->Increment("a", -50), -8);
  EXPECT_EQ(*t->Increment("b", -3), -3);
  EXPECT_EQ(*t->Get("a"), -8);
  EXPECT_EQ(t->size(), 2u);
}

TEST_F(Table, IncrementPastInt64MaxFailsAndKeepsValue) {
  auto t = MustCreate(1000);
  ASSERT_TRUE(t->Set("k", INT64_MAX - 1).ok());
  EXPECT_EQ(*t->Increment("k", 1), INT64_MAX);
  auto r = t->Increment("k", 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(std::string(r.status().message()).find("unchanged"), std::string::npos);
  EXPECT_EQ(*t->Get("k"), INT64_MAX);
}

TEST_F(Table, DecrementPastInt64MinFailsAndKeepsValue) {
  auto t = MustCreate(1000);
  ASSERT_TRUE(t->Set("k", INT64_MIN).ok());
  EXPECT_EQ(t->Increment("k", -1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(t->Increment("k", INT64_MIN).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*t->Get("k"), INT64_MIN);
  EXPECT_EQ(*t->Increment("k", INT64_MAX), -1);
}

TEST_F(Table, BadKeysAreInvalidArgumentEverywhere) {
  auto t = MustCreate(1000);
  const std::string too_long(kMaxKeyBytes + 1, 'x');
  for (const std::string& key :
       {std::string(), too_long, std::string("a\x01"), std::string("\xff")}) {
    EXPECT_EQ(t->Increment(key, 1).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(t->Get(key).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(t->Set(key, 1).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(t->CompareAndSet(key, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(t->Delete(key).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(t->size(), 0u);
  // The longest valid key round-trips.
  const std::string longest(kMaxKeyBytes, 'y');
  EXPECT_EQ(*t->Increment(longest, 7), 7);
  EXPECT_EQ(*t->Get(longest), 7);
}

TEST_F(Table, GetOfMissingCounterIsNotFound) {
  auto t = MustCreate(1000);
  EXPECT_EQ(t->Get("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(Table, SetReturnsPreviousValueOnlyWhenCounterExisted) {
  auto t = MustCreate(1000);
  auto first = t->Set("k", 5);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  auto second = t->Set("k", -9);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(**second, 5);
  EXPECT_EQ(*t->Get("k"), -9);
}

TEST_F(Table, CompareAndSetTreatsMissingCounterAsZero) {
  auto t = MustCreate(1000);
  auto miss = t->CompareAndSet("k", 1, 10);
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->applied);
  EXPECT_EQ(miss->value, 0);
  EXPECT_EQ(t->Get("k").status().code(), absl::StatusCode::kNotFound);  // not created

  auto hit = t->CompareAndSet("k", 0, 10);
  ASSERT_TRUE(hit.ok());
  EXPECT_TRUE(hit->applied);
  EXPECT_EQ(hit->value, 10);
  auto stale = t->CompareAndSet("k", 0, 20);
  EXPECT_FALSE(stale->applied);
  EXPECT_EQ(stale->value, 10);
  EXPECT_TRUE(t->CompareAndSet("k", 10, 20)->applied);
  EXPECT_EQ(*t->Get("k"), 20);
}

TEST_F(Table, DeleteReturnsValueThenNotFound) {
  auto t = MustCreate(1000);
  ASSERT_TRUE(t->Increment("k", 3).ok());
  EXPECT_EQ(*t->Delete("k"), 3);
  EXPECT_EQ(t->Get("k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t->Delete("k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t->size(), 0u);
}

TEST_F(Table, DeleteThenReinsertStartsFromZero) {
  auto t = MustCreate(1000);
  ASSERT_TRUE(t->Increment("k", 100).ok());
  ASSERT_TRUE(t->Delete("k").ok());
  EXPECT_EQ(*t->Increment("k", 1), 1);
  EXPECT_EQ(t->size(), 1u);
}

TEST_F(Table, FullTableIsResourceExhaustedAndKeepsEverything) {
  const uint64_t cap = 100;
  auto t = MustCreate(cap);
  for (uint64_t i = 0; i < cap; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), i).ok()) << i;
  auto r = t->Increment("one-too-many", 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(r.status().message()).find("capacity 100"), std::string::npos);
  EXPECT_EQ(t->Set("one-too-many", 1).status().code(), absl::StatusCode::kResourceExhausted);
  // Existing counters still work.
  EXPECT_EQ(*t->Increment("k7", 1), 8);
  for (uint64_t i = 0; i < cap; ++i)
    EXPECT_EQ(*t->Get(absl::StrCat("k", i)), int64_t(i) + (i == 7));
}

TEST_F(Table, DeletesFreeCapacityForNewKeys) {
  const uint64_t cap = 64;
  auto t = MustCreate(cap);
  // Fill, empty, refill many times: tombstones must be reused, not leaked.
  for (int round = 0; round < 50; ++round) {
    for (uint64_t i = 0; i < cap; ++i) {
      ASSERT_TRUE(t->Increment(absl::StrCat("r", round, "-", i), 1).ok()) << round << " " << i;
    }
    for (uint64_t i = 0; i < cap; ++i)
      ASSERT_TRUE(t->Delete(absl::StrCat("r", round, "-", i)).ok());
  }
  EXPECT_EQ(t->size(), 0u);
}

TEST_F(Table, ReopenReclaimsTombstonesAndKeepsValues) {
  {
    auto t = MustCreate(5000);
    for (int i = 0; i < 3000; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), i).ok());
    for (int i = 0; i < 3000; i += 2) ASSERT_TRUE(t->Delete(absl::StrCat("k", i)).ok());
  }
  OpenReport report;
  auto t = CounterTable::Open(Path("t.map"), RealSys(), &report);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(report.tombstones_reclaimed, 1500u);
  EXPECT_EQ((*t)->size(), 1500u);
  for (int i = 0; i < 3000; ++i) {
    auto v = (*t)->Get(absl::StrCat("k", i));
    if (i % 2 == 0) {
      EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
    } else {
      EXPECT_EQ(*v, i);
    }
  }
}

TEST_F(Table, ListIsSortedFilteredByPrefixAndPages) {
  auto t = MustCreate(1000);
  for (std::string k : {"b/2", "a/1", "b/10", "b/1", "c", "b"})
    ASSERT_TRUE(t->Increment(k, 1).ok());
  auto all = t->List("", "", 100);
  std::vector<std::string> keys;
  for (auto& c : all) keys.push_back(c.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a/1", "b", "b/1", "b/10", "b/2", "c"}));

  auto page1 = t->List("b/", "", 2);
  ASSERT_EQ(page1.size(), 2u);
  EXPECT_EQ(page1[0].key, "b/1");
  EXPECT_EQ(page1[1].key, "b/10");
  // A counter created between pages does not shift the next page.
  ASSERT_TRUE(t->Increment("b/0", 1).ok());
  auto page2 = t->List("b/", page1.back().key, 2);
  ASSERT_EQ(page2.size(), 1u);
  EXPECT_EQ(page2[0].key, "b/2");
}

TEST_F(Table, BatchAppliesAllInOrderWithRepeatedKeys) {
  auto t = MustCreate(1000);
  ASSERT_TRUE(t->Set("x", 10).ok());
  std::vector<CounterTable::KeyDelta> ops = {{"x", 1}, {"y", 5}, {"x", 2}, {"z", -1}};
  auto r = t->IncrementBatch(ops);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<int64_t>{11, 5, 13, -1}));
  EXPECT_EQ(*t->Get("x"), 13);
  EXPECT_EQ(*t->Get("y"), 5);
  EXPECT_EQ(*t->Get("z"), -1);
}

// A batch big enough to be sorted by counting into regions first
// (table_batch.cc, step 1), on a table of many regions: the same results
// as the plain sort, every value in request order.
TEST_F(Table, ABigBatchAppliesInRequestOrderWithRepeatedKeysAcrossRegions) {
  auto t = MustCreate(100000);
  ASSERT_GE(t->Info().regions, 64u);
  std::map<std::string, int64_t> expected;
  for (int k = 0; k < 150; k += 3) {  // a third of the keys exist before
    ASSERT_TRUE(t->Set(absl::StrCat("big/", k), k * 1000).ok());
    expected[absl::StrCat("big/", k)] = k * 1000;
  }
  std::vector<std::string> keys;
  std::vector<int64_t> want;
  uint64_t x = 12345;
  for (size_t i = 0; i < kMaxBatchOps; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    keys.push_back(absl::StrCat("big/", (x >> 33) % 150));
  }
  std::vector<CounterTable::KeyDelta> ops;
  for (size_t i = 0; i < keys.size(); ++i) {
    const int64_t delta = static_cast<int64_t>(i % 7) - 3;
    ops.push_back({keys[i], delta});
    want.push_back(expected[keys[i]] += delta);
  }
  auto r = t->IncrementBatch(ops);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, want);
  for (const auto& [key, value] : expected) EXPECT_EQ(*t->Get(key), value) << key;
  EXPECT_EQ(t->size(), expected.size());
  // The first overflow in request order is named, and nothing applies.
  ASSERT_TRUE(t->Set("big/max", INT64_MAX).ok());
  ops.back() = {"big/max", 1};
  ops[ops.size() - 2] = {"big/max", 1};
  r = t->IncrementBatch(ops);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(std::string(r.status().message()).find(absl::StrCat("increment ", ops.size() - 2)),
            std::string::npos)
      << r.status();
  for (const auto& [key, value] : expected) EXPECT_EQ(*t->Get(key), value) << key;
}

TEST_F(Table, BatchWithOneOverflowAppliesNothing) {
  auto t = MustCreate(1000);
  ASSERT_TRUE(t->Set("max", INT64_MAX).ok());
  std::vector<CounterTable::KeyDelta> ops = {{"a", 1}, {"new", 1}, {"max", 1}};
  auto r = t->IncrementBatch(ops);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(std::string(r.status().message()).find("increment 2"), std::string::npos) << r.status();
  EXPECT_EQ(t->Get("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t->Get("new").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*t->Get("max"), INT64_MAX);
  EXPECT_EQ(t->size(), 1u);
}

TEST_F(Table, BatchOverflowNamesTheFirstFailingIncrementInRequestOrder) {
  auto t = MustCreate(1000);
  ASSERT_TRUE(t->Set("a", INT64_MAX).ok());
  ASSERT_TRUE(t->Set("b", INT64_MAX).ok());
  for (auto order :
       {std::vector<std::string>{"z", "b", "a"}, std::vector<std::string>{"z", "a", "b"}}) {
    std::vector<CounterTable::KeyDelta> ops;
    for (auto& k : order) ops.push_back({k, 1});
    auto r = t->IncrementBatch(ops);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_NE(std::string(r.status().message())
                  .find(absl::StrCat("increment 1: adding 1 to counter \"", order[1])),
              std::string::npos)
        << r.status();
  }
  EXPECT_EQ(t->Get("z").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(Table, BatchWithBadKeyNamesItsIndexAndAppliesNothing) {
  auto t = MustCreate(1000);
  std::vector<CounterTable::KeyDelta> ops = {{"ok", 1}, {"", 1}};
  auto r = t->IncrementBatch(ops);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("increment 1"), std::string::npos);
  EXPECT_EQ(t->size(), 0u);
}

TEST_F(Table, BatchLargerThanLimitOrEmptyIsRejected) {
  auto t = MustCreate(5000);
  std::vector<std::string> keys;
  for (size_t i = 0; i <= kMaxBatchOps; ++i) keys.push_back(absl::StrCat("k", i));
  std::vector<CounterTable::KeyDelta> ops;
  for (auto& k : keys) ops.push_back({k, 1});
  EXPECT_EQ(t->IncrementBatch(ops).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(t->IncrementBatch({}).status().code(), absl::StatusCode::kInvalidArgument);
  ops.pop_back();
  EXPECT_TRUE(t->IncrementBatch(ops).ok());
  EXPECT_EQ(t->size(), kMaxBatchOps);
}

TEST_F(Table, BatchThatWouldOverfillTableAppliesNothing) {
  auto t = MustCreate(10);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), 1).ok());
  std::vector<CounterTable::KeyDelta> ops = {{"k0", 1}, {"n1", 1}, {"n2", 1}, {"n3", 1}};
  EXPECT_EQ(t->IncrementBatch(ops).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*t->Get("k0"), 1);
  EXPECT_EQ(t->size(), 8u);
}

TEST_F(Table, ReopenedFileHasTheSameValues) {
  {
    auto t = MustCreate(10000);
    for (int i = 0; i < 5000; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("key-", i), i * 3).ok());
  }
  auto t = CounterTable::Open(Path("t.map"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->size(), 5000u);
  for (int i = 0; i < 5000; ++i) EXPECT_EQ(*(*t)->Get(absl::StrCat("key-", i)), i * 3);
  EXPECT_FALSE((*t)->Info().clean_shutdown);
}

TEST_F(Table, CleanShutdownFlagAndBootIdAreReportedAtOpen) {
  {
    auto t = MustCreate(100);
    ASSERT_TRUE(t->MarkCleanShutdown().ok());
  }
  auto t = CounterTable::Open(Path("t.map"));
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE((*t)->Info().clean_shutdown);
  EXPECT_EQ((*t)->Info().boot_id, *CurrentBootId());
  t->reset();
  // The flag was cleared by that open: a crash now is not a clean shutdown.
  auto again = CounterTable::Open(Path("t.map"));
  EXPECT_FALSE((*again)->Info().clean_shutdown);
}

TEST_F(Table, CreateRefusesExistingFileAndBadCapacity) {
  MustCreate(100);
  EXPECT_EQ(CounterTable::Create(Path("t.map"), 100).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(CounterTable::Create(Path("zero.map"), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Rewrites bytes of a closed table file.
TEST_F(Table, OpenRefusesBadMagic) {
  MustCreate(100);
  Poke(Path("t.map"), 0, "NOTMAGIC", 8);
  auto t = CounterTable::Open(Path("t.map"));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(t.status().message()).find("bad magic"), std::string::npos) << t.status();
}

TEST_F(Table, OpenRefusesOtherLayoutVersion) {
  MustCreate(100);
  uint32_t v = layout::kLayoutVersion + 1;
  Poke(Path("t.map"), offsetof(layout::TableHeader, layout_version), &v, sizeof v);
  auto t = CounterTable::Open(Path("t.map"));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(t.status().message())
                .find(absl::StrCat("layout version is ", v, ", expected ", layout::kLayoutVersion)),
            std::string::npos)
      << t.status();
}

TEST_F(Table, OpenRefusesCorruptHeaderChecksum) {
  MustCreate(100);
  uint64_t cap = 12345;
  Poke(Path("t.map"), offsetof(layout::TableHeader, capacity), &cap, sizeof cap);
  auto t = CounterTable::Open(Path("t.map"));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(t.status().message()).find("checksum"), std::string::npos) << t.status();
}

TEST_F(Table, OpenRefusesTruncatedFile) {
  MustCreate(100);
  auto size = std::filesystem::file_size(Path("t.map"));
  std::filesystem::resize_file(Path("t.map"), size - 4096);
  auto t = CounterTable::Open(Path("t.map"));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(t.status().message()).find("truncated"), std::string::npos) << t.status();
  std::filesystem::resize_file(Path("t.map"), 100);
  EXPECT_EQ(CounterTable::Open(Path("t.map")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(Table, ReadOnlyOpenReadsWithoutWriting) {
  {
    auto t = MustCreate(1000);
    ASSERT_TRUE(t->Increment("a", 5).ok());
    ASSERT_TRUE(t->Increment("b", 6).ok());
  }
  auto before = std::filesystem::last_write_time(Path("t.map"));
  auto t = CounterTable::OpenReadOnly(Path("t.map"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->Get("a"), 5);
  int n = 0;
  (*t)->ForEach([&](std::string_view, int64_t) { ++n; });
  EXPECT_EQ(n, 2);
  EXPECT_EQ((*t)->Info().live, 2u);
  EXPECT_EQ(std::filesystem::last_write_time(Path("t.map")), before);
}

TEST_F(Table, MapFileCostsAtMost256BytesPerCounterOfCapacity) {
  // Each counter of capacity costs at most 256 bytes; the sections that do
  // not grow with the capacity (the session places: 11 MiB) come on top,
  // and at the default capacity the whole file still stays within it.
  auto small = MustCreate(65536, "small.map");
  auto big = MustCreate(1000000, "big.map");
  const double marginal = double(big->Info().file_size - small->Info().file_size) /
                          double(1000000 - 65536);
  EXPECT_LE(marginal, 256.0);
  EXPECT_LE(double(big->Info().file_size) / 1e6, 256.0);
}

TEST_F(Table, SnapshotForEachSeesEveryCounterOnce) {
  auto t = MustCreate(10000);
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), i).ok());
  for (int round = 0; round < 2; ++round) {
    std::map<std::string, int64_t> seen;
    t->SnapshotForEach([&](std::string_view k, int64_t v) {
      EXPECT_TRUE(seen.emplace(std::string(k), v).second);
    });
    ASSERT_EQ(seen.size(), 3000u);
    for (int i = 0; i < 3000; ++i) EXPECT_EQ(seen[absl::StrCat("k", i)], i);
  }
}

}  // namespace
}  // namespace countersd
