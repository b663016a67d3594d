// Issue 10, fault 8a: concurrent inserts into a --capacity=100 table reached
// 101 counters. The capacity check summed the regions' counts and then
// inserted, so two processes inserting into different regions at the last
// free place both passed it. Capacity is now reserved atomically before a
// slot is taken (table_insert.cc), and released if the insert is abandoned.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "tests/shared/stopped_child.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using CapacityRace = TempDirTest;
using stopped_child::SpawnStoppedInside;
using stopped_child::WaitExit;

// Two keys of different regions.
std::pair<std::string, std::string> KeysOnTwoRegions(const CounterTable& t) {
  std::string a = "last-a", b;
  for (int i = 0; b.empty(); ++i) {
    std::string k = absl::StrCat("last-b-", i);
    if (t.StripeOf(k) != t.StripeOf(a)) b = k;
  }
  return {a, b};
}

// The deterministic form: one process is stopped inside its insert of the
// 100th counter (past the capacity check); another then inserts into
// another region. Only one of the two may succeed.
TEST_F(CapacityRace, AnInsertInFlightHoldsTheLastPlace) {
  auto t = MustCreate(100);
  for (int i = 0; i < 99; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), 1).ok());
  auto [a, b] = KeysOnTwoRegions(*t);
  pid_t first = SpawnStoppedInside(a, 0, [&] { _exit(t->Increment(a, 1).ok() ? 0 : 1); });
  absl::StatusOr<int64_t> second = t->Increment(b, 1);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted) << second.status();
  ASSERT_EQ(kill(first, SIGCONT), 0);
  EXPECT_EQ(WaitExit(first), 0);
  EXPECT_EQ(t->size(), 100u);
  EXPECT_EQ(*t->Get(a), 1);
}

// The same with a batch in flight holding the last two places.
TEST_F(CapacityRace, ABatchInFlightHoldsItsPlaces) {
  auto t = MustCreate(100);
  for (int i = 0; i < 98; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), 1).ok());
  // b is on neither of the batch's regions, so it never waits for them.
  const std::string a = "batch-a", other = "batch-other";
  std::string b;
  for (int i = 0; b.empty(); ++i) {
    std::string k = absl::StrCat("last-b-", i);
    if (t->StripeOf(k) != t->StripeOf(a) && t->StripeOf(k) != t->StripeOf(other)) b = k;
  }
  const CounterTable::KeyDelta ops[] = {{a, 1}, {other, 1}};
  pid_t first = SpawnStoppedInside(a, 0, [&] { _exit(t->IncrementBatch(ops).ok() ? 0 : 1); });
  EXPECT_EQ(t->Increment(b, 1).status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_EQ(kill(first, SIGCONT), 0);
  EXPECT_EQ(WaitExit(first), 0);
  EXPECT_EQ(t->size(), 100u);
}

// A process killed holding a reservation gives it back when it is
// recovered: the place is usable again, and no more than that.
TEST_F(CapacityRace, ReservationOfAKilledInserterIsReleasedByRecovery) {
  auto t = MustCreate(100);
  for (int i = 0; i < 99; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), 1).ok());
  auto [a, b] = KeysOnTwoRegions(*t);
  pid_t victim = SpawnStoppedInside(a, 0, [&] { (void)t->Increment(a, 1); });
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  WaitExit(victim);
  EXPECT_EQ(t->RecoverDeadProcess(victim).inserts_rolled_back, 1);
  EXPECT_TRUE(t->Increment(b, 1).ok());
  EXPECT_EQ(t->Increment("one-too-many", 1).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(t->size(), 100u);
}

// The same for a batch killed midway: all of its reservation comes back.
TEST_F(CapacityRace, ReservationOfAKilledBatchIsReleasedByRecovery) {
  auto t = MustCreate(100);
  for (int i = 0; i < 90; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("k", i), 1).ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 10; ++i) keys.push_back(absl::StrCat("batch-", i));
  std::vector<CounterTable::KeyDelta> ops;
  for (const std::string& k : keys) ops.push_back({k, 1});
  // Stops inside the insert of one of its keys: some created, 10 reserved.
  pid_t victim = SpawnStoppedInside(keys[5], 0, [&] { (void)t->IncrementBatch(ops); });
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  WaitExit(victim);
  EXPECT_EQ(t->RecoverDeadProcess(victim).batches_rolled_back, 1);
  EXPECT_EQ(t->size(), 90u);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(t->Increment(absl::StrCat("after-", i), 1).ok()) << i;
  EXPECT_EQ(t->Increment("one-too-many", 1).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(t->size(), 100u);
}

// The red team's form: many processes insert distinct keys at once. Every
// insert that returned OK is in the table, and the table never holds more
// than its capacity.
TEST_F(CapacityRace, ConcurrentInsertersNeverPassTheCapacity) {
  constexpr int kProcs = 8;
  constexpr int kKeysEach = 40;
  for (int round = 0; round < 20; ++round) {
    auto t = MustCreate(100, absl::StrCat("t", round, ".map"));
    std::vector<pid_t> kids;
    for (int p = 0; p < kProcs; ++p) {
      pid_t pid = fork();
      if (pid == 0) {
        int ok = 0;
        for (int i = 0; i < kKeysEach; ++i) {
          if (t->Increment(absl::StrCat("p", p, "-", i), 1).ok()) ++ok;
        }
        _exit(ok);  // < 256
      }
      kids.push_back(pid);
    }
    int succeeded = 0;
    for (pid_t k : kids) succeeded += WaitExit(k);
    ASSERT_LE(t->size(), 100u) << "round " << round;
    ASSERT_EQ(t->size(), static_cast<uint64_t>(succeeded)) << "round " << round;
    ASSERT_EQ(t->List("", "", 1000).size(), t->size());
  }
}

}  // namespace
}  // namespace countersd
