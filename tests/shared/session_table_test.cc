// Exactly-once sessions in the table (shared/session_table.cc): duplicates
// answered from the window, sequences reused or forgotten, unknown
// sessions, the limits, the write and its entry committing together under
// crashes, and sessions through a snapshot and a restore.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "shared/session_refusal.h"
#include "shared/snapshot_file.h"
#include "shared/table_internal.h"
#include "tests/shared/stopped_child.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using stopped_child::KillAndReap;
using stopped_child::SpawnStoppedInside;

class Sessions : public TempDirTest {
 protected:
  std::unique_ptr<CounterTable> Make(uint32_t max = kSessionSlots,
                                     absl::Duration ttl = absl::Hours(1)) {
    auto t = MustCreate(10000);
    t->ConfigureSessions(max, ttl);
    return t;
  }
};

std::string Id(char c) { return std::string(kSessionIdBytes, c); }

SessionWrite W(const std::string& id, uint64_t seq, uint64_t fp = 7) {
  return SessionWrite{id, seq, fp};
}

TEST_F(Sessions, ARetriedBatchIsAppliedOnceAndAnsweredWithItsFirstResponse) {
  auto t = Make();
  const std::string a = Id('a');
  const std::vector<CounterTable::KeyDelta> ops = {{"x", 5}, {"y", 2}, {"x", 1}};
  auto first = t->IncrementBatch(ops, W(a, 1));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(first->values, (std::vector<int64_t>{5, 2, 6}));
  ASSERT_TRUE(t->Increment("x", 100).ok());  // someone else writes in between
  auto retry = t->IncrementBatch(ops, W(a, 1));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->values, (std::vector<int64_t>{5, 2, 6}));
  EXPECT_EQ(*t->Get("x"), 106);
  EXPECT_EQ(*t->Get("y"), 2);
  EXPECT_EQ(t->SessionsLive(), 1u);
}

TEST_F(Sessions, SetCompareAndSetAndDeleteRetriedReturnTheirFirstResponses) {
  auto t = Make();
  const std::string a = Id('a');
  auto set = t->Set("k", 10, W(a, 1));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_FALSE(set->flag);  // no previous value
  auto cas = t->CompareAndSet("k", 10, 11, W(a, 2));
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(cas->flag);
  EXPECT_EQ(cas->values[0], 11);
  // Retried: the swap is not tried again (it would fail: 11 != 10).
  auto cas2 = t->CompareAndSet("k", 10, 11, W(a, 2));
  ASSERT_TRUE(cas2.ok());
  EXPECT_TRUE(cas2->duplicate);
  EXPECT_TRUE(cas2->flag);
  // A swap that did not apply is a success too, and is remembered.
  auto miss = t->CompareAndSet("k", 99, 1, W(a, 3));
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->flag);
  ASSERT_TRUE(t->Set("k", 99).ok());
  auto miss2 = t->CompareAndSet("k", 99, 1, W(a, 3));
  ASSERT_TRUE(miss2.ok());
  EXPECT_TRUE(miss2->duplicate);
  EXPECT_FALSE(miss2->flag);
  EXPECT_EQ(*t->Get("k"), 99);
  auto del = t->Delete("k", W(a, 4));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->values[0], 99);
  auto del2 = t->Delete("k", W(a, 4));
  ASSERT_TRUE(del2.ok()) << "a retried Delete is not NOT_FOUND: " << del2.status();
  EXPECT_EQ(del2->values[0], 99);
  EXPECT_EQ(t->Get("k").status().code(), absl::StatusCode::kNotFound);
  auto set2 = t->Set("k", 1, W(a, 1));
  ASSERT_TRUE(set2.ok());
  EXPECT_TRUE(set2->duplicate);
  EXPECT_EQ(t->Get("k").status().code(), absl::StatusCode::kNotFound) << "the retry set nothing";
}

TEST_F(Sessions, AFailedWriteIsNotRememberedAndItsRetryRunsAgain) {
  auto t = Make();
  const std::string a = Id('a');
  ASSERT_TRUE(t->Set("k", INT64_MAX).ok());
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  EXPECT_EQ(t->IncrementBatch(ops, W(a, 1)).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(t->Delete("gone", W(a, 2)).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(t->Set("k", 0).ok());
  auto retry = t->IncrementBatch(ops, W(a, 1));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->duplicate);
  EXPECT_EQ(*t->Get("k"), 1);
}

TEST_F(Sessions, ASequenceReusedForAnotherRequestIsRefused) {
  auto t = Make();
  const std::string a = Id('a');
  ASSERT_TRUE(t->Set("k", 1, W(a, 1, /*fp=*/1)).ok());
  auto other = t->Set("k", 2, W(a, 1, /*fp=*/2));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument) << other.status();
  EXPECT_EQ(*t->Get("k"), 1);
}

TEST_F(Sessions, TheWindowHoldsTheLast64AndOlderSequencesAreRefusedUnapplied) {
  auto t = Make();
  const std::string a = Id('a');
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  // Out of order within the window: 2 before 1.
  ASSERT_TRUE(t->IncrementBatch(ops, W(a, 2)).ok());
  ASSERT_TRUE(t->IncrementBatch(ops, W(a, 1)).ok());
  for (uint64_t q = 3; q <= 100; ++q) ASSERT_TRUE(t->IncrementBatch(ops, W(a, q)).ok()) << q;
  EXPECT_EQ(*t->Get("k"), 100);
  auto kept = t->IncrementBatch(ops, W(a, 100 - kSessionWindow + 1));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->duplicate);
  auto old = t->IncrementBatch(ops, W(a, 100 - kSessionWindow));
  EXPECT_TRUE(IsForgottenSequenceError(old.status())) << old.status();
  // A sequence never applied but older than the window is refused too.
  EXPECT_EQ(*t->Get("k"), 100);
}

TEST_F(Sessions, ResponsesThatNoLongerFitTheValuesAreForgottenNotWrong) {
  auto t = Make();
  const std::string a = Id('a');
  std::vector<std::string> keys;
  for (int i = 0; i < 600; ++i) keys.push_back(absl::StrCat("k", i));
  std::vector<CounterTable::KeyDelta> big;
  for (const std::string& k : keys) big.push_back({k, 1});
  ASSERT_TRUE(t->IncrementBatch(big, W(a, 1)).ok());
  ASSERT_TRUE(t->IncrementBatch(big, W(a, 2)).ok());  // 1,200 values: 1's are overwritten
  auto first = t->IncrementBatch(big, W(a, 1));
  EXPECT_TRUE(IsForgottenSequenceError(first.status())) << first.status();
  auto second = t->IncrementBatch(big, W(a, 2));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->values, std::vector<int64_t>(600, 2));
  EXPECT_EQ(*t->Get("k0"), 2);
}

TEST_F(Sessions, AnUnknownSessionStartsOnlyWithinTheWindow) {
  auto t = Make();
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  auto late = t->IncrementBatch(ops, W(Id('a'), kSessionWindow + 1));
  EXPECT_TRUE(IsUnknownSessionError(late.status())) << late.status();
  EXPECT_EQ(t->Get("k").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(t->IncrementBatch(ops, W(Id('a'), kSessionWindow)).ok());
}

TEST_F(Sessions, AtTheLimitTheLeastRecentlyWrittenSessionGivesItsPlace) {
  auto t = Make(/*max=*/2);
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  for (uint64_t q = 1; q <= 70; ++q) ASSERT_TRUE(t->IncrementBatch(ops, W(Id('a'), q)).ok());
  ASSERT_TRUE(t->IncrementBatch(ops, W(Id('b'), 1)).ok());
  ASSERT_TRUE(t->IncrementBatch(ops, W(Id('c'), 1)).ok());  // takes a's place
  EXPECT_EQ(t->SessionsLive(), 2u);
  auto a = t->IncrementBatch(ops, W(Id('a'), 70));
  EXPECT_TRUE(IsUnknownSessionError(a.status())) << "a was forgotten: " << a.status();
  auto b = t->IncrementBatch(ops, W(Id('b'), 1));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->duplicate);
  EXPECT_EQ(*t->Get("k"), 72);
}

TEST_F(Sessions, ALoweredLimitIsReachedAsNewSessionsStart) {
  auto t = Make(/*max=*/4);
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  for (char id : {'a', 'b', 'c', 'd'}) ASSERT_TRUE(t->IncrementBatch(ops, W(Id(id), 1)).ok());
  EXPECT_EQ(t->SessionsLive(), 4u);
  t->ConfigureSessions(2, absl::Hours(1));  // as after a restart with --sessions-max=2
  ASSERT_TRUE(t->IncrementBatch(ops, W(Id('e'), 1)).ok());
  EXPECT_EQ(t->SessionsLive(), 2u) << "the oldest gave their places down to the limit";
  auto d = t->IncrementBatch(ops, W(Id('d'), 1));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->duplicate) << "the most recent of the old ones is kept";
}

TEST_F(Sessions, AnIdleSessionIsForgottenAfterTheTtl) {
  // A ttl of 1ns: every session is idle past it by its next write.
  auto t = Make(kSessionSlots, absl::Nanoseconds(1));
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  for (uint64_t q = 1; q <= 70; ++q) {
    auto r = t->IncrementBatch(ops, W(Id('a'), q));
    if (q <= kSessionWindow) {
      ASSERT_TRUE(r.ok()) << q << ": " << r.status();
      EXPECT_FALSE(r->duplicate);
    } else {
      EXPECT_TRUE(IsUnknownSessionError(r.status())) << q << ": " << r.status();
    }
  }
  // Forgotten, so a retry within the window applies again: the ttl is
  // what exactly-once is bounded by.
  auto again = t->IncrementBatch(ops, W(Id('a'), 1));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->duplicate);
}

TEST_F(Sessions, SessionsOffRefuseWritesWithASession) {
  auto t = Make(/*max=*/0);
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  EXPECT_EQ(t->IncrementBatch(ops, W(Id('a'), 1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(t->Get("k").status().code(), absl::StatusCode::kNotFound);
}

// A writer killed at any point before its commit leaves neither the write
// nor its entry; the retry then applies once.
void ExpectKilledWriteUndoneThenAppliedOnce(CounterTable* t, const std::string& stop_key,
                                            int after) {
  const std::string a = Id('a');
  const std::vector<CounterTable::KeyDelta> ops = {{"p", 1}, {"q", 10}, {"r", 100}};
  ASSERT_TRUE(t->IncrementBatch(ops, W(a, 1)).ok());
  pid_t victim = SpawnStoppedInside(stop_key, after, [&] { (void)t->IncrementBatch(ops, W(a, 2)); });
  KillAndReap(victim);
  RecoveryReport rep = t->RecoverDeadProcess(victim);
  EXPECT_EQ(rep.batches_rolled_back, 1);
  EXPECT_EQ(*t->Get("p"), 1);
  EXPECT_EQ(*t->Get("q"), 10);
  auto retry = t->IncrementBatch(ops, W(a, 2));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->duplicate) << "the undone write's entry was left behind";
  EXPECT_EQ(retry->values, (std::vector<int64_t>{2, 20, 200}));
  auto dup = t->IncrementBatch(ops, W(a, 2));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(*t->Get("r"), 200);
}

TEST_F(Sessions, AWriterKilledMidBatchLeavesNeitherTheWriteNorItsEntry) {
  auto t = Make();
  ExpectKilledWriteUndoneThenAppliedOnce(t.get(), "q", 0);
}

TEST_F(Sessions, AWriterKilledAfterItsEntryBeforeItsCommitLeavesNeither) {
  auto t = Make();
  ExpectKilledWriteUndoneThenAppliedOnce(t.get(), std::string(table_internal::kSessionEntryHookKey),
                                         0);
}

TEST_F(Sessions, AKilledDeleteIsUndoneAndItsRetryDeletesOnce) {
  auto t = Make();
  ASSERT_TRUE(t->Set("d", 5).ok());
  const std::string a = Id('a');
  pid_t victim = SpawnStoppedInside(std::string(table_internal::kSessionEntryHookKey), 0,
                                    [&] { (void)t->Delete("d", W(a, 1)); });
  KillAndReap(victim);
  t->RecoverDeadProcess(victim);
  EXPECT_EQ(*t->Get("d"), 5) << "the undone delete's key is live again";
  EXPECT_EQ(t->size(), 1u);
  auto del = t->Delete("d", W(a, 1));
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_FALSE(del->duplicate);
  EXPECT_EQ(t->size(), 0u);
  EXPECT_TRUE(t->Increment("d", 1).ok()) << "the capacity was given back once";
}

TEST_F(Sessions, ASnapshotHoldsTheSessionsAndARestoreKeepsRetriesOnce) {
  auto t = Make();
  const std::string a = Id('a');
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 3}};
  for (uint64_t q = 1; q <= 5; ++q) ASSERT_TRUE(t->IncrementBatch(ops, W(a, q)).ok());
  ASSERT_TRUE(t->Set("s", 9, W(Id('b'), 1)).ok());
  std::string records;
  uint64_t counters = 0, sessions = 0;
  t->SnapshotForEach(
      [&](std::string_view k, int64_t v) {
        AppendSnapshotRecord(&records, k, v);
        ++counters;
      },
      [&](const SessionRecord& s) {
        AppendSessionRecord(&records, s);
        ++sessions;
      });
  EXPECT_EQ(sessions, 2u);
  // Written after the snapshot: lost by a restore of it.
  ASSERT_TRUE(t->IncrementBatch(ops, W(a, 6)).ok());
  {
    auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 10000);
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE((*f)->Write(records, counters, 10000, sessions).ok());
  }
  auto restored = MustCreate(10000, "r.map");
  restored->ConfigureSessions(kSessionSlots, absl::Hours(1));
  std::vector<SessionRecord> read;
  auto meta = SnapshotFile::ReadNewest(
      Path("s.snap"), [&](std::string_view k, int64_t v) { ASSERT_TRUE(restored->Set(k, v).ok()); },
      RealSys(), [&](const SessionRecord& s) { read.push_back(s); });
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->sessions, 2u);
  for (const SessionRecord& s : read) ASSERT_TRUE(restored->RestoreSession(s).ok());
  EXPECT_EQ(*restored->Get("k"), 15);
  auto held = restored->IncrementBatch(ops, W(a, 5));
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->duplicate) << "a write the snapshot holds is not applied again";
  EXPECT_EQ(held->values[0], 15);
  auto lost = restored->IncrementBatch(ops, W(a, 6));
  ASSERT_TRUE(lost.ok());
  EXPECT_FALSE(lost->duplicate) << "a write the snapshot lost is applied once";
  EXPECT_EQ(*restored->Get("k"), 18);
  auto set = restored->Set("s", 1, W(Id('b'), 1));
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(set->duplicate);
}

TEST_F(Sessions, AWriteDuringASnapshotIsInItWithItsEntryOrNeither) {
  auto t = Make();
  const std::string a = Id('a');
  const std::vector<CounterTable::KeyDelta> ops = {{"k", 1}};
  ASSERT_TRUE(t->IncrementBatch(ops, W(a, 1)).ok());
  // A write made from inside the snapshot's walk (after the epoch began)
  // is in neither the counters nor the sessions of that snapshot.
  int64_t k = 0;
  uint64_t highest = 0;
  bool wrote = false;
  t->SnapshotForEach(
      [&](std::string_view key, int64_t v) {
        if (key == "k") k = v;
        if (!wrote) {
          wrote = true;
          ASSERT_TRUE(t->IncrementBatch(ops, W(a, 2)).ok());
        }
      },
      [&](const SessionRecord& s) { highest = s.highest; });
  EXPECT_TRUE(wrote);
  EXPECT_EQ(k, 1);
  EXPECT_EQ(highest, 1u);
  EXPECT_EQ(*t->Get("k"), 2);
}

}  // namespace
}  // namespace countersd
