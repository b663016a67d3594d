// The log of durable writes (shared/write_ahead_log.h, server/group_commit.h)
// without a daemon: the record format and its torn tail, replay onto a
// snapshot by its marks (nothing twice, nothing lost), group commit (many
// records, few syncs) and a failed sync (INTERNAL to every waiter, the
// segment abandoned, the next records on a new one).
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/group_commit.h"
#include "shared/counter_table.h"
#include "shared/write_ahead_log.h"
#include "tests/shared/fault_injecting_sys.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using DurableLog = TempDirTest;

WalRecord Add(uint64_t lsn, const std::string& key, int64_t delta) {
  WalRecord r;
  r.lsn = lsn;
  r.ops.push_back(WalOp{WalOp::kAdd, key, delta});
  return r;
}

TEST_F(DurableLog, RecordsRoundTripAndATornTailIsIgnored) {
  WalRecord full = Add(7, "k", 5);
  full.ops.push_back(WalOp{WalOp::kSet, "s", -3});
  full.ops.push_back(WalOp{WalOp::kDelete, "d", 0});
  full.session_id = std::string(16, 'x');
  full.session_entry = {9, 1234, true, {1, 2, 3}};
  std::string bytes;
  AppendWalRecord(&bytes, full);
  AppendWalRecord(&bytes, Add(8, "k", 1));
  size_t valid = 0;
  auto records = ParseWalSegment(bytes, &valid);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0], full);
  EXPECT_EQ(valid, bytes.size());
  // Cut short anywhere in the second record: the first alone is read.
  for (size_t cut = 1; cut < bytes.size() - valid + 1; ++cut) {
    const std::string torn = bytes.substr(0, bytes.size() - cut);
    auto read = ParseWalSegment(torn, &valid);
    EXPECT_LE(read.size(), 1u);
  }
  // A flipped byte fails the record's checksum.
  std::string damaged = bytes;
  damaged[damaged.size() - 1] ^= 1;
  EXPECT_EQ(ParseWalSegment(damaged).size(), 1u);
}

TEST_F(DurableLog, ReplayAppliesExactlyWhatTheSnapshotsMarksDoNotHold) {
  auto t = MustCreate(10000);
  t->ConfigureSessions(kSessionSlots, absl::Hours(1));
  WriteControl durable;
  durable.durable = true;
  const std::vector<CounterTable::KeyDelta> a = {{"a", 1}};
  const std::vector<CounterTable::KeyDelta> b = {{"b", 10}};
  auto ra = t->IncrementBatch(a, durable);
  ASSERT_TRUE(ra.ok());
  WalMarks marks;
  std::vector<std::pair<std::string, int64_t>> snap;
  t->SnapshotForEach([&](std::string_view k, int64_t v) { snap.emplace_back(k, v); }, nullptr,
                     &marks);
  auto rb = t->IncrementBatch(b, durable);
  auto ra2 = t->IncrementBatch(a, durable);
  ASSERT_TRUE(rb.ok() && ra2.ok());
  EXPECT_GE(marks.floor, ra->lsn);
  EXPECT_LT(marks.floor, rb->lsn);
  // The log holds all three; the snapshot only the first.
  std::vector<WalRecord> log = {Add(ra->lsn, "a", 1), Add(rb->lsn, "b", 10), Add(ra2->lsn, "a", 1)};
  auto restored = MustCreate(10000, "r.map");
  for (auto& [k, v] : snap) ASSERT_TRUE(restored->Set(k, v).ok());
  for (const WalRecord& r : log) restored->ReplayWalRecord(r, marks);
  restored->FinishReplay(ra2->lsn);
  EXPECT_EQ(*restored->Get("a"), 2);
  EXPECT_EQ(*restored->Get("b"), 10);
  EXPECT_EQ(restored->LastWalLsn(), ra2->lsn);
  // The restored table's next snapshot holds the whole log: replaying it
  // again onto that snapshot changes nothing.
  WalMarks again;
  std::vector<std::pair<std::string, int64_t>> snap2;
  restored->SnapshotForEach([&](std::string_view k, int64_t v) { snap2.emplace_back(k, v); },
                            nullptr, &again);
  auto twice = MustCreate(10000, "twice.map");
  for (auto& [k, v] : snap2) ASSERT_TRUE(twice->Set(k, v).ok());
  for (const WalRecord& r : log) twice->ReplayWalRecord(r, again);
  EXPECT_EQ(*twice->Get("a"), 2);
  EXPECT_EQ(*twice->Get("b"), 10);
}

TEST_F(DurableLog, ConcurrentRecordsShareSyncs) {
  auto t = MustCreate(10000);
  auto gc = GroupCommit::Start(t.get(), dir_, 0);
  ASSERT_TRUE(gc.ok()) << gc.status();
  constexpr int kRecords = 200;
  std::vector<std::promise<absl::Status>> done(kRecords);
  for (int i = 0; i < kRecords; ++i) {
    (*gc)->Append(Add(i + 1, "k", 1), [&done, i](absl::Status st) { done[i].set_value(st); });
  }
  for (auto& d : done) EXPECT_TRUE(d.get_future().get().ok());
  EXPECT_EQ((*gc)->records_synced(), uint64_t{kRecords});
  EXPECT_LT((*gc)->syncs(), uint64_t{kRecords}) << "each record had a sync of its own";
  gc->reset();
  auto read = ReadWal(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), size_t{kRecords});
  EXPECT_EQ(read->back().lsn, uint64_t{kRecords});
}

TEST_F(DurableLog, AFailedSyncFailsItsWaitersAndTheNextRecordsGoToANewSegment) {
  auto t = MustCreate(10000);
  FaultInjectingSys sys;
  auto gc = GroupCommit::Start(t.get(), dir_, 3, nullptr, &sys);
  ASSERT_TRUE(gc.ok()) << gc.status();
  auto append = [&](uint64_t lsn) {
    std::promise<absl::Status> p;
    (*gc)->Append(Add(lsn, "k", 1), [&p](absl::Status st) { p.set_value(st); });
    return p.get_future().get();
  };
  ASSERT_TRUE(append(1).ok());
  const uint32_t requested = t->snapshot_control().request_seq.load();
  sys.FailNth(SysCall::kFsync, 1, EIO, ".wal");
  absl::Status failed = append(2);
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal) << failed;
  EXPECT_EQ(sys.injected(), 1);
  EXPECT_GT(t->snapshot_control().request_seq.load(), requested) << "no snapshot asked for";
  ASSERT_TRUE(append(3).ok()) << "the log stayed broken";
  gc->reset();
  EXPECT_EQ(WalSegments(dir_).size(), 2u) << "the failed segment was written again";
  auto read = ReadWal(dir_);
  ASSERT_TRUE(read.ok());
  ASSERT_FALSE(read->empty());
  EXPECT_EQ(read->front().lsn, 1u);
  EXPECT_EQ(read->back().lsn, 3u);
}

TEST_F(DurableLog, SegmentsGoOnceADurableSnapshotCoversThem) {
  auto t = MustCreate(10000);
  auto gc = GroupCommit::Start(t.get(), dir_, 0);
  ASSERT_TRUE(gc.ok());
  auto append = [&](uint64_t lsn) {
    std::promise<absl::Status> p;
    (*gc)->Append(Add(lsn, "k", 1), [&p](absl::Status st) { p.set_value(st); });
    return p.get_future().get();
  };
  ASSERT_TRUE(append(1).ok());
  // A snapshot became durable that holds LSN 1 (what the writer publishes).
  SnapshotControl& control = t->snapshot_control();
  control.wal_floor.store(1);
  control.generation.fetch_add(1);
  ASSERT_TRUE(append(2).ok());  // on a new segment; the first one goes
  EXPECT_EQ(WalSegments(dir_).size(), 1u);
  auto read = ReadWal(dir_);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().lsn, 2u);
}

}  // namespace
}  // namespace countersd
