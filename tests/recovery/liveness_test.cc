// Issue 10, faults 4, 8b and 8c: a handler that is stopped (SIGSTOP, or
// ptrace) while the daemon runs.
//
//  - Stopped inside an increment's critical section, it holds a stripe that
//    every other handler's single serving thread then waits for. The
//    supervisor must see it (the stripe's owner word names it, and
//    /proc/<pid>/stat says it is stopped), log it with pid, role and stripe,
//    SIGKILL it and recover, so that the others serve again within the bound
//    config.h states (FrozenHolderStallBound).
//  - Stopped holding nothing, its listening socket still takes connections
//    that nobody serves. The supervisor must see that its serving loop's
//    heartbeat stopped, kill it and respawn it after --handler-stall-limit.
//  - Stopped when the supervisor dies, it must not keep the data
//    directory's LOCK flock, nor must a process waiting for its stripe.
//
// The handler is stopped inside the critical section by the handlers' test
// seam COUNTERSD_TEST_STOP_IN_CRITICAL_SECTION=<key> (handler_process.cc):
// an increment of exactly that key raise(SIGSTOP)s the handler while it
// holds the key's stripe.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "server/config.h"
#include "shared/counter_table.h"
#include "shared/data_dir.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/recovery_checks.h"

namespace countersd::testing {
namespace {

constexpr char kSeamEnv[] = "COUNTERSD_TEST_STOP_IN_CRITICAL_SECTION";
constexpr char kHeldKey[] = "liveness/held";
// What a loaded 2-core machine (or ASan) may add to a bound the daemon
// states: scheduling, the respawn, the client's reconnect.
constexpr absl::Duration kMargin = absl::Seconds(10);

bool IsStopped(char state) { return state == 'T' || state == 't'; }

// Polls until one of the daemon's handlers is stopped; returns its pid, or 0
// after `timeout`.
pid_t WaitForStoppedHandler(const Daemon& daemon, absl::Duration timeout) {
  absl::Time deadline = MonotonicNow() + timeout;
  while (MonotonicNow() < deadline) {
    for (pid_t p : daemon.HandlerPids()) {
      if (IsStopped(ProcessState(p))) return p;
    }
    absl::SleepFor(absl::Milliseconds(10));  // poll interval of a condition with a deadline
  }
  return 0;
}

// A key other than `key` on the same stripe, read from the live map file.
std::string KeyOnSameStripe(const Daemon& daemon, const std::string& key) {
  auto table = CounterTable::OpenReadOnly(absl::StrCat(daemon.data_dir(), "/", kMapFile));
  EXPECT_TRUE(table.ok()) << table.status();
  if (!table.ok()) return "";
  const uint32_t stripe = (*table)->StripeOf(key);
  for (int i = 0;; ++i) {
    std::string k = absl::StrCat("liveness/waiter-", i);
    if ((*table)->StripeOf(k) == stripe) return k;
  }
}

uint32_t StripeOf(const Daemon& daemon, const std::string& key) {
  auto table = CounterTable::OpenReadOnly(absl::StrCat(daemon.data_dir(), "/", kMapFile));
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? (*table)->StripeOf(key) : UINT32_MAX;
}

// An Increment of `key` on a connection of its own, in a thread of its own.
// Its deadline bounds the join, also when a failed assertion leaves early.
struct PendingIncrement {
  ~PendingIncrement() {
    if (thread.joinable()) thread.join();
  }
  std::thread thread;
  absl::StatusOr<int64_t> result = absl::UnknownError("not finished");
  absl::Time finished;
};

void StartIncrement(const std::string& address, const std::string& key, absl::Duration deadline,
                    PendingIncrement* p) {
  p->thread = std::thread([address, key, deadline, p] {
    auto stub = NewStubOnOwnConnection(address);
    counters::v1::IncrementRequest req;
    req.set_key(key);
    counters::v1::IncrementResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(deadline));
    // A connection made while a killed handler is being respawned can be
    // refused or reset (its listener closed; the new one not yet bound); a
    // client retries that. What these tests check is that no call hangs on
    // a stopped process: the deadline says so.
    ctx.set_wait_for_ready(true);
    grpc::Status s = stub->Increment(&ctx, req, &resp);
    p->finished = MonotonicNow();
    if (s.ok()) {
      p->result = resp.value();
    } else {
      p->result = absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
  });
}

// The log line (JSON) with this msg whose child_pid is `pid`, or "".
std::string LogLineFor(const Daemon& daemon, std::string_view msg, pid_t pid) {
  for (const std::string& line : daemon.LogLinesWithMsg(msg)) {
    if (JsonField(line, "child_pid") == absl::StrCat(pid)) return line;
  }
  return "";
}

TEST(LivenessTest, StoppedLockHolderIsKilledAndTheOtherHandlersServeWithinTheStatedBound) {
  DaemonOptions options;
  options.handlers = 3;
  options.extra_env = {absl::StrCat(kSeamEnv, "=", kHeldKey)};
  // Only the lock-holder check may rescue the other handlers within the
  // margin below: the stall check would take a minute.
  options.extra_flags = {"--handler-stall-limit=60s"};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();
  const std::string waiter_key = KeyOnSameStripe(**daemon, kHeldKey);
  ASSERT_FALSE(waiter_key.empty());

  PendingIncrement held;
  StartIncrement(address, kHeldKey, absl::Seconds(60), &held);
  const pid_t stopped = WaitForStoppedHandler(**daemon, absl::Seconds(30));
  ASSERT_NE(stopped, 0) << "no handler stopped in the critical section: " << (*daemon)->log();
  const absl::Time stopped_at = MonotonicNow();

  // Increments of another key on the same stripe, on connections of their
  // own: those that land on the other handlers wait for the stripe.
  constexpr int kWaiters = 8;
  std::vector<PendingIncrement> waiters(kWaiters);
  for (PendingIncrement& w : waiters) StartIncrement(address, waiter_key, absl::Seconds(60), &w);
  for (PendingIncrement& w : waiters) w.thread.join();
  held.thread.join();

  const absl::Duration bound = FrozenHolderStallBound(Config{}.lock_hold_limit) + kMargin;
  int served = 0;
  absl::Duration longest = absl::ZeroDuration();
  for (const PendingIncrement& w : waiters) {
    if (!w.result.ok()) continue;  // it landed on the stopped handler, which was killed
    ++served;
    longest = std::max(longest, w.finished - stopped_at);
    EXPECT_LE(w.finished - stopped_at, bound)
        << "a handler waited on the frozen holder's stripe for longer than the stated bound";
  }
  EXPECT_GE(served, 1) << "no increment waiting on the stripe was ever served: "
                       << (*daemon)->log();
  std::cout << served << " of " << kWaiters << " waiting increments served, the last "
            << absl::FormatDuration(longest) << " after the holder stopped (stated bound "
            << absl::FormatDuration(FrozenHolderStallBound(Config{}.lock_hold_limit))
            << " + the repair)\n";

  // Logged with pid, role and stripe.
  std::string line = LogLineFor(**daemon, "killing a stopped lock holder", stopped);
  ASSERT_FALSE(line.empty()) << (*daemon)->log();
  EXPECT_EQ(JsonField(line, "role"), "handler");
  EXPECT_EQ(JsonField(line, "stripe"), absl::StrCat(StripeOf(**daemon, kHeldKey)));
  EXPECT_EQ(JsonField(line, "state"), "T");
  EXPECT_EQ(JsonField(line, "liveness_kills"), "1");
  // Reaped and recovered: its stripe was released, and it is respawned.
  ASSERT_TRUE((*daemon)->WaitForLog(absl::StrCat("\"child_pid\":", stopped), absl::Seconds(30)));
  std::string exited = LogLineFor(**daemon, "handler exited", stopped);
  ASSERT_FALSE(exited.empty()) << (*daemon)->log();
  EXPECT_EQ(JsonField(exited, "stripes_released"), "1");
  EXPECT_EQ(JsonField(exited, "killed_because"), "stopped holding a stripe");

  // The killed increment is rolled back; every served one counted once.
  auto stub = NewStub(address);
  auto value = GetCounter(*stub, waiter_key);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_GE(*value, served);
  EXPECT_LE(*value, kWaiters);
  // And the aggregator, which waited for the stripe too, snapshots again.
  auto snap = TakeSnapshot(*stub);
  EXPECT_TRUE(snap.ok()) << snap.status();
}

TEST(LivenessTest, StoppedHandlerIsKilledAndRespawnedAfterTheStallLimitAndStopsTakingConnections) {
  DaemonOptions options;
  options.handlers = 2;
  options.extra_flags = {"--handler-stall-limit=2s"};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::vector<pid_t> handlers = (*daemon)->HandlerPids();
  ASSERT_EQ(handlers.size(), 2u);
  const pid_t stopped = handlers[0];
  ASSERT_EQ(kill(stopped, SIGSTOP), 0);
  const absl::Time stopped_at = MonotonicNow();

  // Killed after the stall limit (2s, plus a check period), logged, reaped
  // and respawned.
  ASSERT_TRUE((*daemon)->WaitForLog("killing a stalled handler", absl::Seconds(2) + kMargin))
      << (*daemon)->log();
  std::cout << "the stopped handler was found stalled "
            << absl::FormatDuration(MonotonicNow() - stopped_at)
            << " after its SIGSTOP (--handler-stall-limit=2s)\n";
  std::string line = LogLineFor(**daemon, "killing a stalled handler", stopped);
  ASSERT_FALSE(line.empty()) << (*daemon)->log();
  EXPECT_EQ(JsonField(line, "role"), "handler");
  EXPECT_EQ(JsonField(line, "state"), "T");
  ASSERT_TRUE((*daemon)->WaitForLogCount("\"msg\":\"started handler\"", 3, kMargin))
      << (*daemon)->log();
  std::string exited = LogLineFor(**daemon, "handler exited", stopped);
  ASSERT_FALSE(exited.empty()) << (*daemon)->log();
  EXPECT_EQ(JsonField(exited, "status"), "killed by SIGKILL");
  EXPECT_EQ(JsonField(exited, "killed_because"), "serving loop stalled");

  // Its socket is closed: every new connection is served.
  constexpr int kConnections = 12;
  std::vector<PendingIncrement> calls(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    StartIncrement((*daemon)->address(), absl::StrCat("liveness/conn-", i), absl::Seconds(20),
                   &calls[i]);
  }
  for (PendingIncrement& c : calls) c.thread.join();
  for (int i = 0; i < kConnections; ++i) {
    EXPECT_TRUE(calls[i].result.ok()) << "connection " << i << ": " << calls[i].result.status();
  }
}

TEST(LivenessTest, StoppedHandlerAndStripeWaitersDoNotOutliveAKilledSupervisor) {
  ScopedTempDir dir;
  DaemonOptions options;
  options.handlers = 2;
  options.data_dir = dir.path();
  options.extra_env = {absl::StrCat(kSeamEnv, "=", kHeldKey)};
  // The supervisor must not recover the holder itself before it is killed.
  options.extra_flags = {"--lock-hold-limit=1h", "--handler-stall-limit=2h"};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();
  const std::string waiter_key = KeyOnSameStripe(**daemon, kHeldKey);

  PendingIncrement held;
  StartIncrement(address, kHeldKey, absl::Seconds(30), &held);
  const pid_t stopped = WaitForStoppedHandler(**daemon, absl::Seconds(30));
  ASSERT_NE(stopped, 0) << "no handler stopped in the critical section: " << (*daemon)->log();
  // The aggregator's next snapshot waits for the stripe too (the region is
  // dirty). Once a Snapshot call through the handler that still serves
  // times out, the aggregator is stuck in the stripe wait.
  absl::Time deadline = MonotonicNow() + absl::Seconds(60);
  bool snapshot_stuck = false;
  while (!snapshot_stuck && MonotonicNow() < deadline) {
    auto stub = NewStubOnOwnConnection(address);
    counters::v1::GetRequest req;
    req.set_key("liveness/probe");  // on another stripe or not, Get takes no lock
    counters::v1::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(2)));
    if (stub->Get(&ctx, req, &resp).error_code() != grpc::StatusCode::NOT_FOUND) {
      continue;  // this connection went to the stopped handler
    }
    auto snap = TakeSnapshot(*stub, absl::Seconds(3));
    snapshot_stuck = !snap.ok() && snap.status().code() == absl::StatusCode::kDeadlineExceeded;
  }
  ASSERT_TRUE(snapshot_stuck) << "the aggregator never waited on the held stripe";
  std::vector<PendingIncrement> waiters(4);
  for (PendingIncrement& w : waiters) StartIncrement(address, waiter_key, absl::Seconds(30), &w);

  // PR_SET_PDEATHSIG fires when the thread that forked a child exits: the
  // supervisor must have no thread but the main one, which forks.
  size_t supervisor_threads = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", (*daemon)->pid(), "/task"))) {
    ++supervisor_threads;
  }
  EXPECT_EQ(supervisor_threads, 1u);
  const std::vector<pid_t> children = (*daemon)->ChildPids();
  ASSERT_EQ(kill((*daemon)->pid(), SIGKILL), 0);

  // Every child exits, and the LOCK is free, within the drain timeout
  // (plus the margin).
  const std::string lock_path = absl::StrCat(dir.path(), "/", kLockFile);
  int fd = open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  deadline = MonotonicNow() + Config{}.drain_timeout + kMargin;
  bool locked = false;
  while (!(locked = flock(fd, LOCK_EX | LOCK_NB) == 0) && MonotonicNow() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));  // poll interval of a condition with a deadline
  }
  if (locked) flock(fd, LOCK_UN);
  close(fd);
  std::string states;
  for (pid_t c : children) absl::StrAppend(&states, c, ":", std::string(1, ProcessState(c)), " ");
  ASSERT_TRUE(locked) << "the LOCK is still held after the supervisor died; children " << states;
  for (pid_t c : children) {
    char state = ProcessState(c);
    EXPECT_TRUE(state == '\0' || state == 'Z') << "child " << c << " outlived the supervisor";
  }
  for (PendingIncrement& w : waiters) w.thread.join();
  held.thread.join();

  // A new daemon starts on the directory and serves the stripe.
  options.extra_env.clear();
  options.extra_flags.clear();
  auto second = Daemon::Start(options);
  ASSERT_TRUE(second.ok()) << second.status();
  auto stub2 = NewStub((*second)->address());
  auto value = IncrementCounter(*stub2, waiter_key, 1);
  ASSERT_TRUE(value.ok()) << value.status();
}

}  // namespace
}  // namespace countersd::testing
