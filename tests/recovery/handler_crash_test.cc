// Issue 3, test 3: a handler killed with SIGKILL while clients increment.
//
// The invariant checked, per key, once the load has stopped:
//   acked <= value <= acked + unknown
// where `acked` counts the Increment(+1) calls answered OK and `unknown` the
// calls that failed, timed out or were cancelled (a handler can apply an
// increment and die before answering). Nothing acknowledged is lost, and
// nothing is applied that no client sent. Alongside, clients send atomic
// batches that add 1 to each of 64 keys: whatever the kill interrupts, those
// keys must all end equal (a half-done batch is rolled back whole).
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/increment_load.h"
#include "tests/recovery/recovery_checks.h"

namespace countersd::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(60);

// Codes a client may see when the handler serving it dies or is restarting.
bool IsCrashCode(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::CANCELLED;
}

std::string DescribeFailures(const IncrementLoad& load) {
  std::string out;
  auto examples = load.failure_examples();
  for (const auto& [code, n] : load.failure_codes()) {
    absl::StrAppend(&out, "code ", static_cast<int>(code), " x", n, " (e.g. \"", examples[code],
                    "\") ");
  }
  return out;
}

// True if the supervisor logged the exit of handler `pid`, killed by SIGKILL
// ({"msg":"handler exited","child_pid":<pid>,"status":"killed by SIGKILL",...}).
bool LogNamesKilledHandler(const Daemon& daemon, pid_t pid) {
  for (const std::string& line : daemon.LogLinesWithMsg("handler exited")) {
    if (JsonField(line, "child_pid") == absl::StrCat(pid) &&
        JsonField(line, "status").find("SIGKILL") != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(HandlerCrashTest, SigkilledHandlersUnderLoadLoseNoAcknowledgedIncrementAndAreRespawned) {
  constexpr int kHandlers = 2;
  DaemonOptions options;
  options.handlers = kHandlers;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());

  IncrementLoad load({.address = (*daemon)->address(),
                      .threads = 4,
                      .keys = Keys("handler-crash", 16),
                      .call_deadline = absl::Seconds(10)});
  // Atomic batches of +1 to each of 64 keys, on two more connections.
  const std::vector<std::string> batch_keys = Keys("handler-crash-batch", 64);
  IncrementLoad batch_load({.address = (*daemon)->address(),
                            .threads = 2,
                            .keys = batch_keys,
                            .call_deadline = absl::Seconds(10),
                            .batches = true});
  ASSERT_TRUE(load.WaitForAcked(2000, kWait)) << "load never got going: " << load.acked();
  ASSERT_TRUE(batch_load.WaitForAcked(100, kWait)) << "batches never got going";

  // Two rounds: the second kills whichever handler is busiest then, which
  // may be the one respawned in the first round.
  std::set<pid_t> killed;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    auto victim = BusiestHandler(*stub);
    ASSERT_TRUE(victim.ok()) << victim.status();
    auto children = (*daemon)->ChildPids();
    ASSERT_NE(std::find(children.begin(), children.end(), *victim), children.end())
        << "GetStats names pid " << *victim << ", which is not a child of the supervisor";

    ASSERT_EQ(kill(*victim, SIGKILL), 0);
    killed.insert(*victim);
    load.Mark();
    batch_load.Mark();

    // The supervisor reaps it and starts a new handler in its place.
    auto pids = WaitForHandlersWithout(*stub, *victim, kHandlers, kWait);
    ASSERT_TRUE(pids.ok()) << pids.status() << "\nlog:\n" << (*daemon)->log();
    // The log names the dead handler, its pid and the signal.
    EXPECT_TRUE((*daemon)->WaitForLogCount("\"msg\":\"handler exited\"", round + 1, kWait));
    EXPECT_TRUE(LogNamesKilledHandler(**daemon, *victim))
        << "no log line names handler " << *victim << " killed by signal 9:\n"
        << (*daemon)->log();

    // The server keeps serving: every client thread gets increments
    // acknowledged again, including those whose connection died.
    ASSERT_TRUE(load.WaitForEveryThreadAckedSinceMark(kWait))
        << "some client never recovered: " << DescribeFailures(load);
    ASSERT_TRUE(batch_load.WaitForEveryThreadAckedSinceMark(kWait))
        << "some batch client never recovered: " << DescribeFailures(batch_load);
    ASSERT_TRUE(load.WaitForAcked(load.acked() + 1000, kWait));
  }
  load.Stop();
  batch_load.Stop();
  int64_t acked = 0, unknown = 0;
  for (const auto& [key, t] : load.Tally()) {
    acked += t.acked;
    unknown += t.unknown;
  }
  std::cout << "acknowledged " << acked << ", outcome unknown " << unknown << ": "
            << DescribeFailures(load) << "\n";

  std::cout << "batches acknowledged " << batch_load.acked() << ": " << DescribeFailures(batch_load)
            << "\n";

  for (const auto& [code, n] : load.failure_codes()) {
    EXPECT_TRUE(IsCrashCode(code)) << "unexpected failures: " << DescribeFailures(load);
  }
  for (const auto& [code, n] : batch_load.failure_codes()) {
    EXPECT_TRUE(IsCrashCode(code)) << "unexpected failures: " << DescribeFailures(batch_load);
  }
  EXPECT_TRUE(AcknowledgedIncrementsPresent(*stub, load.Tally()));
  EXPECT_TRUE(AcknowledgedIncrementsPresent(*stub, batch_load.Tally()));
  // A batch cut short by the kill was rolled back whole.
  EXPECT_TRUE(CountersAllEqual(*stub, batch_keys));

  // The respawned handlers serve: GetStats comes from one of them or from a
  // survivor, and none of the killed pids is listed any more.
  auto pids = HandlerPids(*stub);
  ASSERT_TRUE(pids.ok()) << pids.status();
  for (pid_t dead : killed) EXPECT_FALSE(pids->contains(dead)) << dead;

  // And it still shuts down cleanly.
  auto status = (*daemon)->Terminate();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
}

}  // namespace
}  // namespace countersd::testing
