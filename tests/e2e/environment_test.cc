// COUNTERSD_<FLAG> environment variables (server/flag_environment.h) and the
// default --handlers (server/cpu_budget.h), on the real daemon: a variable
// sets its flag, the command line wins, a bad value exits 2 naming the
// variable, an unknown one is a warning; the default follows the CPUs the
// process may use, and the start-up log says why.
#include <sched.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// An IncrementBatch of `n` entries; its status code.
grpc::StatusCode BatchOf(const std::string& address, int n) {
  auto stub = NewStub(address);
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  counters::v1::IncrementBatchRequest req;
  for (int i = 0; i < n; ++i) req.add_increments()->set_key(absl::StrCat("env/", i));
  counters::v1::IncrementBatchResponse resp;
  return stub->IncrementBatch(&ctx, req, &resp).error_code();
}

// Options with `handlers` (0: no --handlers flag), extra flags and
// environment.
DaemonOptions With(int handlers, std::vector<std::string> env,
                   std::vector<std::string> flags = {}) {
  DaemonOptions options;
  options.handlers = handlers;
  options.extra_env = std::move(env);
  options.extra_flags = std::move(flags);
  return options;
}

// The "starting" line's field.
std::string StartingField(const Daemon& daemon, std::string_view field) {
  std::vector<std::string> lines = daemon.LogLinesWithMsg("starting");
  return lines.size() == 1 ? JsonField(lines[0], field) : "";
}

TEST(EnvironmentTest, AVariableSetsItsFlag) {
  auto daemon = Daemon::Start(With(0, {"COUNTERSD_MAX_BATCH=3", "COUNTERSD_HANDLERS=1"}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_EQ(BatchOf((*daemon)->address(), 3), grpc::StatusCode::OK);
  EXPECT_EQ(BatchOf((*daemon)->address(), 4), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(StartingField(**daemon, "handlers"), "1") << (*daemon)->log();
  EXPECT_EQ(StartingField(**daemon, "handlers_because"), "COUNTERSD_HANDLERS");
  EXPECT_EQ((*daemon)->HandlerPids().size(), 1u);
}

TEST(EnvironmentTest, TheCommandLineWinsOverTheVariable) {
  // The harness passes --handlers=2 and --snapshot-interval=1s; a bad value
  // in a variable whose flag is given is never looked at.
  auto daemon = Daemon::Start(With(
      2, {"COUNTERSD_MAX_BATCH=3", "COUNTERSD_HANDLERS=1", "COUNTERSD_SNAPSHOT_INTERVAL=soon"},
      {"--max-batch=5"}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_EQ(BatchOf((*daemon)->address(), 5), grpc::StatusCode::OK);
  EXPECT_EQ(BatchOf((*daemon)->address(), 6), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(StartingField(**daemon, "handlers"), "2");
  EXPECT_EQ(StartingField(**daemon, "handlers_because"), "--handlers");
}

TEST(EnvironmentTest, ABadValueExitsTwoNamingTheVariableAndTheValue) {
  ScopedTempDir dir;
  struct Case {
    std::string env;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"COUNTERSD_MAX_BATCH=lots", {"COUNTERSD_MAX_BATCH", "'lots'", "--max-batch"}},
      {"COUNTERSD_TRUST_UNTRUSTED_MAP=maybe", {"COUNTERSD_TRUST_UNTRUSTED_MAP", "'maybe'"}},
      {"COUNTERSD_DRAIN_TIMEOUT=5 seconds", {"COUNTERSD_DRAIN_TIMEOUT", "'5 seconds'"}},
      // Parses, but out of range: the flag's check, with where it came from.
      {"COUNTERSD_MAX_BATCH=100000", {"--max-batch=100000", "is from COUNTERSD_MAX_BATCH"}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<CommandResult> r =
        RunCommand({CountersdPath(), "--listen=127.0.0.1:0",
                    absl::StrCat("--data-dir=", dir.path()), "--handlers=1"},
                   absl::Seconds(60), {c.env});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 2) << c.env << ": " << r->err;
    for (const std::string& e : c.expected) EXPECT_THAT(r->err, HasSubstr(e)) << c.env;
  }
}

TEST(EnvironmentTest, AnUnknownVariableIsAWarningWithTheClosestFlag) {
  auto daemon = Daemon::Start(With(1, {"COUNTERSD_MAX_BATCHES=3", "countersd_log_level=debug",
                                      "COUNTERSD_NOTHING_LIKE_A_FLAG=1",
                                      "COUNTERSD_FLAGS=--handlers=3"}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string log = (*daemon)->log();
  EXPECT_THAT(log, HasSubstr("ignoring environment variable COUNTERSD_MAX_BATCHES: no countersd "
                             "flag is set by it (did you mean COUNTERSD_MAX_BATCH?)"));
  EXPECT_THAT(log, HasSubstr("ignoring environment variable countersd_log_level: no countersd "
                             "flag is set by it (did you mean COUNTERSD_LOG_LEVEL?)"));
  EXPECT_THAT(log, HasSubstr("ignoring environment variable COUNTERSD_NOTHING_LIKE_A_FLAG: no "
                             "countersd flag is set by it\""));
  // The systemd unit's own variable is not a typo.
  EXPECT_THAT(log, Not(HasSubstr("COUNTERSD_FLAGS")));
  // Nothing was applied: the default batch limit holds.
  EXPECT_EQ(BatchOf((*daemon)->address(), 4), grpc::StatusCode::OK);
}

TEST(EnvironmentTest, HandlersDefaultToTheCpusTheProcessMayUse) {
  // The daemon inherits the test's affinity (posix_spawn): one CPU allowed.
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  int first_cpu = 0;
  while (!CPU_ISSET(first_cpu, &saved)) ++first_cpu;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first_cpu, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  auto pinned = Daemon::Start(With(0, {}));
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(StartingField(**pinned, "handlers"), "1") << (*pinned)->log();
  EXPECT_EQ(StartingField(**pinned, "handlers_because"), "1 CPU in the affinity mask");
  EXPECT_EQ((*pinned)->HandlerPids().size(), 1u);

  // Unpinned: as many as the budget says, at most the CPUs of the mask.
  auto daemon = Daemon::Start(With(0, {}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  int handlers = 0;
  ASSERT_TRUE(absl::SimpleAtoi(StartingField(**daemon, "handlers"), &handlers))
      << (*daemon)->log();
  EXPECT_GE(handlers, 1);
  EXPECT_LE(handlers, CPU_COUNT(&saved));
  EXPECT_EQ((*daemon)->HandlerPids().size(), static_cast<size_t>(handlers));
  EXPECT_THAT(StartingField(**daemon, "handlers_because"),
              ::testing::AnyOf(HasSubstr("in the affinity mask"), HasSubstr("cgroup")));
}

TEST(EnvironmentTest, HelpSaysHowVariablesWorkAndWhatTheHandlersDefaultComesTo) {
  absl::StatusOr<CommandResult> r = RunCommand({CountersdPath(), "--help"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_THAT(r->out, HasSubstr("every flag can also be set as COUNTERSD_<FLAG>"));
  EXPECT_THAT(r->out, HasSubstr("A flag on the command line wins over its variable"));
  EXPECT_THAT(r->out, HasSubstr("Any other COUNTERSD_ variable is logged as a warning"));
  // Said once, not per flag.
  EXPECT_EQ(r->out.find("COUNTERSD_<FLAG>"), r->out.rfind("COUNTERSD_<FLAG>"));
  EXPECT_THAT(r->out, HasSubstr("cgroup v2 cpu.max"));
  EXPECT_THAT(r->out, ::testing::ContainsRegex("; here [0-9]+ \\([0-9]+ CPUs? in the affinity "
                                               "mask|; here [0-9]+ \\(cgroup"));
}

}  // namespace
}  // namespace countersd::testing
