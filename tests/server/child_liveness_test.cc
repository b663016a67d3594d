// The supervisor's liveness checks (server/child_liveness.h) on a real table
// and real processes, with the check times given by the test: a stopped
// process that holds a stripe is found once it has been stopped for the
// lock-hold limit, and not before or without a stripe; a heartbeat older
// than the stall limit is found only once the child has been watched that
// long. The daemon-level behaviour (log, kill, recovery, respawn, the bound)
// is in tests/recovery/liveness_test.cc.
#include "server/child_liveness.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

constexpr LivenessLimits kLimits = {.lock_hold_limit = absl::Seconds(1),
                                    .handler_stall_limit = absl::Seconds(5)};
constexpr int64_t kSecond = 1000000000;

TEST(ProcessStateTest, ParsesTheStateAfterTheLastParenthesis) {
  EXPECT_EQ(ParseProcessState("42 (countersd) S 1 42 42 0"), 'S');
  EXPECT_EQ(ParseProcessState("42 (a) b) T 1 42"), 'T');  // comm "a) b"
  EXPECT_EQ(ParseProcessState("42 (x (y)) t 1"), 't');
  EXPECT_EQ(ParseProcessState("42 (countersd)"), '\0');
  EXPECT_EQ(ParseProcessState(""), '\0');
}

TEST(ProcessStateTest, ReadsRunningStoppedAndGone) {
  EXPECT_EQ(ReadProcessState(getpid()), 'R');  // this thread is reading it
  pid_t child = fork();
  if (child == 0) {
    raise(SIGSTOP);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, WUNTRACED), child);
  ASSERT_TRUE(WIFSTOPPED(status));
  EXPECT_EQ(ReadProcessState(child), 'T');
  EXPECT_TRUE(IsStoppedState(ReadProcessState(child)));
  kill(child, SIGKILL);
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(ReadProcessState(child), '\0');
}

class ChildLivenessTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    table_ = MustCreate(1000);
    ASSERT_NE(table_, nullptr);
  }
  void TearDown() override {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      int status;
      waitpid(child_, &status, 0);
      table_->RecoverDeadProcess(child_);
    }
    CounterTable::SetCriticalSectionHookForTest(nullptr);
    TempDirTest::TearDown();
  }

  // Forks a child that stops itself: inside the critical section of an
  // increment of `key`, or holding nothing if `key` is empty. Returns once
  // it is stopped.
  void SpawnStopped(const std::string& key) {
    child_ = fork();
    if (child_ == 0) {
      if (key.empty()) raise(SIGSTOP);
      CounterTable::SetCriticalSectionHookForTest([](std::string_view) { raise(SIGSTOP); });
      (void)table_->Increment(key, 1);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child_, &status, WUNTRACED), child_);
    ASSERT_TRUE(WIFSTOPPED(status));
  }

  std::unique_ptr<CounterTable> table_;
  pid_t child_ = 0;
};

TEST_F(ChildLivenessTest, StoppedHolderIsFoundOnceStoppedForTheLockHoldLimit) {
  SpawnStopped("held");
  const int64_t t0 = CounterTable::HeartbeatNow();
  LivenessWatch watch{.stopped_since = 0, .watched_since = t0};
  EXPECT_FALSE(CheckChild(kLimits, *table_, child_, false, t0, watch));
  EXPECT_EQ(watch.stopped_since, t0);
  EXPECT_FALSE(CheckChild(kLimits, *table_, child_, false, t0 + kSecond - 1, watch));
  auto f = CheckChild(kLimits, *table_, child_, false, t0 + kSecond, watch);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, LivenessFinding::Kind::kStoppedHoldingStripe);
  EXPECT_EQ(f->state, 'T');
  EXPECT_EQ(f->stripes, std::vector<uint32_t>{table_->StripeOf("held")});
  EXPECT_EQ(f->how_long, absl::Seconds(1));
  EXPECT_STREQ(f->reason(), "stopped holding a stripe");
}

TEST_F(ChildLivenessTest, HolderStoppedByADebuggerIsFoundToo) {
  // The child parks inside the critical section (it tells us through a
  // pipe), and we stop it the way gdb does: PTRACE_ATTACH.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  child_ = fork();
  if (child_ == 0) {
    static int ready_fd = ready[1];
    CounterTable::SetCriticalSectionHookForTest([](std::string_view) {
      char c = 1;
      (void)!write(ready_fd, &c, 1);
      for (;;) pause();
    });
    (void)table_->Increment("traced", 1);
    _exit(0);
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  if (ptrace(PTRACE_ATTACH, child_, nullptr, nullptr) != 0) {
    GTEST_SKIP() << "ptrace is not permitted here: " << strerror(errno);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child_, &status, 0), child_);
  ASSERT_TRUE(WIFSTOPPED(status));
  EXPECT_EQ(ReadProcessState(child_), 't');
  const int64_t t0 = CounterTable::HeartbeatNow();
  LivenessWatch watch{.stopped_since = 0, .watched_since = t0};
  EXPECT_FALSE(CheckChild(kLimits, *table_, child_, false, t0, watch));
  auto f = CheckChild(kLimits, *table_, child_, false, t0 + kSecond, watch);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state, 't');
  EXPECT_EQ(f->stripes, std::vector<uint32_t>{table_->StripeOf("traced")});
  // TearDown's SIGKILL ends a traced process as well.
}

TEST_F(ChildLivenessTest, StoppedProcessHoldingNothingIsNoLockHolder) {
  SpawnStopped("");
  const int64_t t0 = CounterTable::HeartbeatNow();
  LivenessWatch watch{.stopped_since = 0, .watched_since = t0};
  EXPECT_FALSE(CheckChild(kLimits, *table_, child_, false, t0, watch));
  EXPECT_FALSE(CheckChild(kLimits, *table_, child_, false, t0 + 60 * kSecond, watch));
  EXPECT_TRUE(table_->StripesHeldBy(child_).empty());
}

TEST_F(ChildLivenessTest, RunningProcessClearsItsStoppedSince) {
  // This process runs; a stale stopped_since from an earlier check goes.
  LivenessWatch watch{.stopped_since = 1, .watched_since = 1};
  EXPECT_FALSE(CheckChild(kLimits, *table_, getpid(), false, CounterTable::HeartbeatNow(), watch));
  EXPECT_EQ(watch.stopped_since, 0);
}

TEST_F(ChildLivenessTest, HeartbeatOlderThanTheStallLimitIsFoundOnceWatchedThatLong) {
  ASSERT_TRUE(table_->RegisterProcess(getpid(), ProcessRole::kHandler).ok());
  const int64_t t0 = CounterTable::HeartbeatNow();
  LivenessWatch watch{.stopped_since = 0, .watched_since = t0};
  // No heartbeat yet: not serving, never stalled.
  EXPECT_FALSE(CheckChild(kLimits, *table_, getpid(), true, t0 + 60 * kSecond, watch));
  table_->Heartbeat(t0);
  EXPECT_EQ(table_->LastHeartbeat(getpid()), t0);
  EXPECT_FALSE(CheckChild(kLimits, *table_, getpid(), true, t0 + 5 * kSecond - 1, watch));
  auto f = CheckChild(kLimits, *table_, getpid(), true, t0 + 5 * kSecond, watch);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, LivenessFinding::Kind::kServingLoopStalled);
  EXPECT_EQ(f->how_long, absl::Seconds(5));
  EXPECT_STREQ(f->reason(), "serving loop stalled");
  // Watched afresh (the supervisor itself had a gap): not judged until it
  // has been watched for the stall limit.
  watch.watched_since = t0 + 4 * kSecond;
  EXPECT_FALSE(CheckChild(kLimits, *table_, getpid(), true, t0 + 5 * kSecond, watch));
  EXPECT_TRUE(CheckChild(kLimits, *table_, getpid(), true, t0 + 9 * kSecond, watch));
  // Without a heartbeat role (the aggregator), never.
  EXPECT_FALSE(CheckChild(kLimits, *table_, getpid(), false, t0 + 60 * kSecond, watch));
}

}  // namespace
}  // namespace countersd
