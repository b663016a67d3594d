// The durability lag (shared/durability_lag.h) as the snapshot writer keeps
// it (SnapshotControl invariant 4): a change makes the table "behind" from
// the moment it is made; a durable snapshot clears it; a failed one leaves
// it, with its original age, and counts; so does a writer that stops (or
// dies) after it started a snapshot. Real table, real files; the failures
// come from the fault-injecting Sys.
#include <errno.h>

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/snapshot_writer.h"
#include "shared/durability_lag.h"
#include "tests/shared/fault_injecting_sys.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using DurabilityLagTest = TempDirTest;

constexpr absl::Duration kNoLimit = absl::InfiniteDuration();

TEST_F(DurabilityLagTest, AFreshlyOpenedTableIsBehindUntilItsFirstDurableSnapshot) {
  auto t = MustCreate(1000);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(ReadDurabilityLag(*t, kNoLimit).behind);
  auto writer = SnapshotWriter::Open(t.get(), dir_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Write().ok());
  const DurabilityLag lag = ReadDurabilityLag(*t, kNoLimit);
  EXPECT_FALSE(lag.behind);
  EXPECT_EQ(lag.consecutive_failures, 0u);
}

TEST_F(DurabilityLagTest, AChangeIsBehindUntilADurableSnapshotHoldsIt) {
  auto t = MustCreate(1000);
  auto writer = SnapshotWriter::Open(t.get(), dir_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Write().ok());
  ASSERT_TRUE(t->Increment("a", 1).ok());
  EXPECT_TRUE(ReadDurabilityLag(*t, kNoLimit).behind);
  ASSERT_TRUE((*writer)->Write().ok());
  EXPECT_FALSE(ReadDurabilityLag(*t, kNoLimit).behind);
}

TEST_F(DurabilityLagTest, FailedSnapshotsKeepTheChangeBehindAndCountUntilOneSucceeds) {
  FaultInjectingSys sys;
  auto t = MustCreate(1000);
  auto writer = SnapshotWriter::Open(t.get(), dir_, &sys);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Write().ok());
  ASSERT_TRUE(t->Increment("a", 1).ok());
  sys.FailNth(SysCall::kMsync, 0, EIO, "snapshot data");  // every attempt
  for (int i = 1; i <= 3; ++i) {
    ASSERT_FALSE((*writer)->Write().ok());
    const DurabilityLag lag = ReadDurabilityLag(*t, kNoLimit);
    EXPECT_TRUE(lag.behind) << "attempt " << i;
    EXPECT_EQ(lag.consecutive_failures, static_cast<uint64_t>(i));
    // The region was copied (and its stamp cleared) by the failed attempt:
    // the change is remembered as the snapshot's, not forgotten.
    EXPECT_FALSE(t->ChangedSinceLastSnapshot());
  }
  EXPECT_EQ(t->snapshot_control().last_failed.load(), 1u);
  sys.Clear();
  ASSERT_TRUE((*writer)->Write().ok());
  const DurabilityLag lag = ReadDurabilityLag(*t, kNoLimit);
  EXPECT_FALSE(lag.behind);
  EXPECT_EQ(lag.consecutive_failures, 0u);
  EXPECT_EQ(lag.failures, 3u);
}

// A writer that dies (or is stopped) after it started a snapshot but before
// it is durable: the copy cleared the regions' stamps, undurable_since still
// holds the change.
TEST_F(DurabilityLagTest, AWriterThatStopsInsideASnapshotLeavesTheChangeBehind) {
  auto t = MustCreate(1000);
  auto writer = SnapshotWriter::Open(t.get(), dir_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Write().ok());
  ASSERT_TRUE(t->Increment("a", 1).ok());
  const uint32_t stamp = t->OldestUncopiedChange();
  ASSERT_NE(stamp, 0u);
  // Step 0 of a Write, then the copy, then nothing (the writer is gone).
  t->snapshot_control().undurable_since.store(stamp);
  t->SnapshotForEach([](std::string_view, int64_t) {});
  EXPECT_EQ(t->OldestUncopiedChange(), 0u);
  EXPECT_TRUE(ReadDurabilityLag(*t, kNoLimit).behind);
}

TEST_F(DurabilityLagTest, LimitDefaultsToTenIntervalsAndNeverUnderTenSeconds) {
  EXPECT_EQ(DurabilityLagLimit(absl::ZeroDuration(), absl::Seconds(1)), absl::Seconds(10));
  EXPECT_EQ(DurabilityLagLimit(absl::ZeroDuration(), absl::Milliseconds(10)), absl::Seconds(10));
  EXPECT_EQ(DurabilityLagLimit(absl::ZeroDuration(), absl::Seconds(5)), absl::Seconds(50));
  EXPECT_EQ(DurabilityLagLimit(absl::Seconds(2), absl::Seconds(5)), absl::Seconds(2));
}

}  // namespace
}  // namespace countersd
