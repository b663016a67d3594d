// Issue 10, fault 1: a process killed while it copies a region for a
// pending snapshot (snapshot_staging.cc) must not make that snapshot skip
// the region. The red team stopped a handler with gdb inside the copy loop
// and SIGKILLed it; the snapshot then held the region's half-old staging
// copy, and increments acknowledged before the Snapshot call were lost.
//
// Here, deterministically: this process takes a snapshot (SnapshotForEach).
// When it has copied region 0 (its callback runs for region 0's counter,
// with no lock held), it forks a "handler" that increments a key of a later
// region R. The handler, a writer of epoch e, copies R first; the copy hook
// (CounterTable::SetSnapshotCopyHookForTest, the test seam) stops it after
// a few counters, and it is SIGKILLed and recovered as the supervisor
// would. The snapshot then goes on to R: it must copy R again, so that
// every counter of R holds the value it had when the snapshot started.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using SnapshotCopyCrash = TempDirTest;

constexpr uint32_t kStopAfter = 5;  // counters copied before the copier stops
uint32_t g_stop_region = 0;

void StopInsideCopy(uint32_t region, uint32_t copied) {
  if (region == g_stop_region && copied == kStopAfter) raise(SIGSTOP);
}

TEST_F(SnapshotCopyCrash, CopierKilledMidCopyLeavesTheRegionToBeCopiedAgain) {
  auto t = MustCreate(10000);
  // One key in region 0 (its counter's callback is where the test acts),
  // and 40 keys of one later region R.
  std::string first;
  for (int i = 0; first.empty(); ++i) {
    std::string k = absl::StrCat("first-", i);
    if (t->StripeOf(k) == 0) first = k;
  }
  uint32_t r = 0;
  for (int i = 0; r == 0; ++i) r = t->StripeOf(absl::StrCat("victim-", i));
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 40; ++i) {
    std::string k = absl::StrCat("victim-", i);
    if (t->StripeOf(k) == r) keys.push_back(k);
  }
  ASSERT_TRUE(t->Set(first, 1).ok());
  for (const std::string& k : keys) ASSERT_TRUE(t->Set(k, 1).ok());
  // A first snapshot stages R with every value at 1 ...
  t->SnapshotForEach([](std::string_view, int64_t) {});
  // ... then every counter of R is incremented: acknowledged, so the next
  // snapshot must hold 11 for each.
  for (const std::string& k : keys) ASSERT_EQ(*t->Increment(k, 10), 11);

  g_stop_region = r;
  bool acted = false;
  std::map<std::string, int64_t> seen;
  t->SnapshotForEach([&](std::string_view key, int64_t value) {
    seen[std::string(key)] = value;
    if (acted) return;
    acted = true;  // region 0 is copied; R is not yet: epoch e is pending for R
    pid_t handler = fork();
    if (handler == 0) {
      CounterTable::SetSnapshotCopyHookForTest(StopInsideCopy);
      (void)t->Increment(keys[0], 100);  // copies R for epoch e first
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(handler, &status, WUNTRACED), handler);
    ASSERT_TRUE(WIFSTOPPED(status)) << "the handler did not stop inside the copy: " << status;
    ASSERT_EQ(kill(handler, SIGKILL), 0);
    ASSERT_EQ(waitpid(handler, &status, 0), handler);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    RecoveryReport rep = t->RecoverDeadProcess(handler);
    EXPECT_EQ(rep.stripes_released, 1);
  });
  ASSERT_TRUE(acted);
  EXPECT_EQ(seen[first], 1);
  for (const std::string& k : keys) {
    EXPECT_EQ(seen[k], 11) << k << ": the snapshot holds a half-old copy of region " << r;
  }
  // The killed increment never happened, and the table goes on.
  EXPECT_EQ(*t->Get(keys[0]), 11);
  EXPECT_EQ(*t->Increment(keys[0], 1), 12);
}

}  // namespace
}  // namespace countersd
