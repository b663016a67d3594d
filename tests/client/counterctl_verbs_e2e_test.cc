// End-to-end tests of counterctl's scripting verbs and errors: batch (atomic
// and --pipe), del of several keys, version, stats' server lines, usage
// errors in JSON, "did you mean", --addr checks, COUNTERS_* variables, help
// that matches behaviour, and the bash completion script. The real binary
// against a real countersd (the e2e harness, a free port, a temporary data
// dir).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/monotonic_time.h"
#include "shared/write_ahead_log.h"
#include "tests/client/ctl_test_util.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

class CounterctlVerbsTest : public SharedDaemonTest {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(CounterctlPath().empty()) << "counterctl binary not known to the harness";
    DaemonOptions options;
    options.handlers = 2;
    options.capacity = 10000;
    StartSharedDaemon(options);
  }

  static Ctl Run(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), absl::StrCat("--addr=", daemon_->address()));
    return RunCtl(args, env);
  }
  static Ctl RunJson(std::vector<std::string> args) {
    args.insert(args.begin(), "-o");
    args.insert(args.begin() + 1, "json");
    return Run(std::move(args));
  }
  static std::string Key(const std::string& suffix) { return TestKey(suffix); }

  // Writes `text` to a file in the test's temporary directory; returns its path.
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(dir_.path(), "/", name);
    std::FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return path;
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return path;
  }

  // The value of `key`, or nullopt if it does not exist.
  static std::optional<int64_t> Value(const std::string& key) {
    CounterClient client(daemon_->address());
    absl::StatusOr<int64_t> v = client.Get(key);
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound) << v.status();
      return std::nullopt;
    }
    return *v;
  }

  ScopedTempDir dir_;
};

TEST_F(CounterctlVerbsTest, BatchAppliesEveryLineFromAFileSkippingBlanksAndComments) {
  const std::string a = Key("a"), b = Key("b");
  const std::string path = WriteFile(
      "in.txt", absl::StrCat("# increments\n", a, " 5\n\n  ", b, "\t-2\r\n", a, " 1\n   # x\n"));
  Ctl r = Run({"batch", "--file", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre(HasSubstr(" 5"), HasSubstr("-2"), HasSubstr(" 6")));
  EXPECT_EQ(Value(a), 6);
  EXPECT_EQ(Value(b), -2);

  Ctl j = RunJson({"batch", "--file=" + path});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  google::protobuf::Struct doc = ParseJson(j.out);
  EXPECT_EQ(Field(doc, "applied").number_value(), 3);
  const auto& counters = Field(doc, "counters").list_value();
  ASSERT_EQ(counters.values_size(), 3);
  EXPECT_EQ(Field(counters.values(1).struct_value(), "line").number_value(), 4);
  EXPECT_EQ(Field(counters.values(1).struct_value(), "key").string_value(), b);
  EXPECT_EQ(Field(counters.values(2).struct_value(), "value").number_value(), 12);
}

TEST_F(CounterctlVerbsTest, BatchReadsStdin) {
  const std::string k = Key("k");
  absl::StatusOr<CommandResult> r =
      RunCommand({"/bin/sh", "-c",
                  absl::StrCat("printf '", k, " 7\\n' | '", CounterctlPath(),
                               "' --addr=", daemon_->address(), " batch")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(Value(k), 7);
}

TEST_F(CounterctlVerbsTest, BatchWithABadLineAppliesNothingAndNamesTheLine) {
  const std::string good = Key("good");
  struct Case {
    std::string line;
    std::string message;
  };
  const Case cases[] = {
      {std::string(200, 'k') + " 1", "bad KEY"},
      {Key("k") + " x", "DELTA must be a signed 64-bit integer"},
      {Key("k") + " 99999999999999999999", "DELTA must be a signed 64-bit integer"},
      {Key("k") + " 1 2", "expected KEY DELTA, got 3 fields"},
      {Key("k"), "expected KEY DELTA, got 1 fields"},
  };
  for (const Case& c : cases) {
    const std::string path =
        WriteFile("bad.txt", absl::StrCat(good, " 1\n# comment\n", c.line, "\n"));
    Ctl r = Run({"batch", "--file=" + path});
    EXPECT_EQ(r.exit_code, 2) << c.line;
    EXPECT_THAT(
        r.err, AllOf(HasSubstr("line 3: "), HasSubstr(c.message), HasSubstr("nothing was applied")))
        << c.line;
    EXPECT_THAT(r.out, IsEmpty());
    Ctl j = RunJson({"batch", "--file=" + path});
    EXPECT_EQ(j.exit_code, 2);
    EXPECT_EQ(Field(Field(ParseJson(j.out), "error").struct_value(), "code").string_value(),
              "INVALID_ARGUMENT");
  }
  EXPECT_EQ(Value(good), std::nullopt);
}

TEST_F(CounterctlVerbsTest, BatchThatWouldOverflowAppliesNothingAndNamesTheLine) {
  const std::string big = Key("big"), other = Key("other");
  ASSERT_EQ(Run({"set", big, "9223372036854775800"}).exit_code, 0);
  const std::string path = WriteFile("in.txt", absl::StrCat(other, " 1\n", big, " 100\n"));
  Ctl r = Run({"batch", "--file=" + path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(
      r.err, AllOf(HasSubstr("line 2: "), HasSubstr("overflow"), HasSubstr("nothing was applied")));
  EXPECT_EQ(Value(other), std::nullopt);
  EXPECT_EQ(Value(big), 9223372036854775800);
}

TEST_F(CounterctlVerbsTest, BatchOverMaxBatchOrEmptyIsRefusedWithoutPipe) {
  const std::string a = Key("a");
  const std::string path = WriteFile("in.txt", absl::StrCat(a, " 1\n", a, " 1\n", a, " 1\n"));
  Ctl r = Run({"batch", "--max-batch=2", "--file=" + path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              AllOf(HasSubstr("3 increments do not fit --max-batch=2"), HasSubstr("--pipe")));
  EXPECT_EQ(Value(a), std::nullopt);
  Ctl empty = Run({"batch", "--file=" + WriteFile("empty.txt", "# nothing\n\n")});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_THAT(empty.err, HasSubstr("no KEY DELTA lines"));
  EXPECT_EQ(Run({"batch", "--max-batch=0", "--file=" + path}).exit_code, 2);
  EXPECT_EQ(Run({"batch", "--max-batch=1001", "--file=" + path}).exit_code, 2);
  Ctl missing = Run({"batch", "--file=/nonexistent/in.txt"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot open /nonexistent/in.txt"));
}

TEST_F(CounterctlVerbsTest, BatchPipeAppliesTheGoodLinesInChunksAndReportsTheFailedOnes) {
  const std::string p = Key(""), big = Key("big");
  ASSERT_EQ(Run({"set", big, "9223372036854775800"}).exit_code, 0);
  std::string text;
  for (int i = 0; i < 25; ++i) absl::StrAppend(&text, p, i % 5, " 1\n");  // lines 1..25
  absl::StrAppend(&text, big, " 100\n");  // 26: overflows, in the third chunk
  absl::StrAppend(&text, "bad\n");        // 27: one field
  absl::StrAppend(&text, p, "0 1\n");     // 28: applied after the refusal
  const std::string path = WriteFile("in.txt", text);
  Ctl j = RunJson({"batch", "--pipe", "--max-batch=10", "--file=" + path});
  EXPECT_EQ(j.exit_code, 1) << j.err;
  google::protobuf::Struct doc = ParseJson(j.out);
  EXPECT_EQ(Field(doc, "applied").number_value(), 26);
  EXPECT_EQ(Field(doc, "failed").number_value(), 2);
  EXPECT_EQ(Field(doc, "unknown").number_value(), 0);
  EXPECT_TRUE(Field(doc, "stopped").has_null_value());
  const auto& failures = Field(doc, "failures").list_value();
  ASSERT_EQ(failures.values_size(), 2);
  EXPECT_EQ(Field(failures.values(0).struct_value(), "line").number_value(), 26);
  EXPECT_THAT(Field(failures.values(0).struct_value(), "reason").string_value(),
              HasSubstr("overflow"));
  EXPECT_EQ(Field(failures.values(1).struct_value(), "line").number_value(), 27);
  EXPECT_EQ(Value(p + "0"), 6);
  EXPECT_EQ(Value(p + "4"), 5);
  EXPECT_EQ(Value(big), 9223372036854775800);

  Ctl text_run = Run({"batch", "--pipe", "--max-batch=10", "--file=" + path});
  EXPECT_EQ(text_run.exit_code, 1);
  EXPECT_THAT(text_run.out,
              AllOf(HasSubstr("applied  26 lines"), HasSubstr("failed   2 lines"),
                    HasSubstr("line 26: "), HasSubstr("line 27: expected KEY DELTA")));
  EXPECT_THAT(text_run.err, HasSubstr("2 of 28 lines failed"));
}

TEST_F(CounterctlVerbsTest, BatchPipeOfGoodLinesExitsZero) {
  const std::string k = Key("k");
  std::string text;
  for (int i = 0; i < 2500; ++i) absl::StrAppend(&text, k, " 1\n");
  Ctl r = Run({"batch", "--pipe", "--file=" + WriteFile("in.txt", text)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("applied  2,500 lines"), HasSubstr("failed   0 lines")));
  EXPECT_EQ(Value(k), 2500);
}

TEST_F(CounterctlVerbsTest, BatchPipeStopsWhenTheDaemonCannotBeReached) {
  const std::string path = WriteFile("in.txt", "a 1\nb 1\n");
  Ctl r = RunCtl({"--addr=127.0.0.1:1", "--timeout=500ms", "-o", "json", "batch", "--pipe",
                  "--max-batch=1", "--file=" + path});
  EXPECT_EQ(r.exit_code, 1);
  google::protobuf::Struct doc = ParseJson(r.out);
  EXPECT_EQ(Field(doc, "applied").number_value(), 0);
  EXPECT_EQ(Field(doc, "unknown").number_value(), 1);  // the first line's call; the second unsent
  EXPECT_EQ(Field(Field(doc, "stopped").struct_value(), "code").string_value(), "UNAVAILABLE");
  EXPECT_THAT(r.err, HasSubstr("stopped after line 1"));
}

TEST_F(CounterctlVerbsTest, DelOfSeveralKeysReportsEachAndExits3IfAnyWasMissing) {
  const std::string a = Key("a"), b = Key("b"), missing = Key("missing");
  ASSERT_EQ(Run({"set", a, "3"}).exit_code, 0);
  ASSERT_EQ(Run({"set", b, "-4"}).exit_code, 0);
  Ctl r = Run({"del", a, missing, b});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(Lines(r.out), ElementsAre(AllOf(StartsWith(a), HasSubstr("deleted (was 3)")),
                                        AllOf(StartsWith(missing), HasSubstr("(not found)")),
                                        AllOf(StartsWith(b), HasSubstr("deleted (was -4)"))));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("counter \"", missing, "\" not found")));
  EXPECT_EQ(Value(a), std::nullopt);
  EXPECT_EQ(Value(b), std::nullopt);

  ASSERT_EQ(Run({"set", a, "8"}).exit_code, 0);
  Ctl j = RunJson({"del", missing, a});
  EXPECT_EQ(j.exit_code, 3);
  const google::protobuf::Struct doc = ParseJson(j.out);
  const auto& counters = Field(doc, "counters").list_value();
  ASSERT_EQ(counters.values_size(), 2);
  EXPECT_FALSE(Field(counters.values(0).struct_value(), "deleted").bool_value());
  EXPECT_EQ(Field(Field(counters.values(0).struct_value(), "error").struct_value(), "code")
                .string_value(),
            "NOT_FOUND");
  EXPECT_TRUE(Field(counters.values(1).struct_value(), "deleted").bool_value());
  EXPECT_EQ(Field(counters.values(1).struct_value(), "previous_value").number_value(), 8);

  ASSERT_EQ(Run({"set", a, "1"}).exit_code, 0);
  ASSERT_EQ(Run({"set", b, "2"}).exit_code, 0);
  Ctl all = Run({"del", a, b});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.err, IsEmpty());
}

TEST_F(CounterctlVerbsTest, VersionPrintsTheClientsAndTheServers) {
  Ctl r = Run({"version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre(::testing::MatchesRegex("client +[0-9]+\\.[0-9]+\\.[0-9]+"),
                                        ::testing::MatchesRegex("server +[0-9]+\\.[0-9]+\\.[0-9]+ "
                                                                "\\(127\\.0\\.0\\.1:[0-9]+\\)")));
  google::protobuf::Struct doc = ParseJson(RunJson({"version"}).out);
  const std::string client = Field(doc, "client").string_value();
  EXPECT_FALSE(client.empty());
  EXPECT_EQ(Field(Field(doc, "server").struct_value(), "version").string_value(), client);
}

TEST_F(CounterctlVerbsTest, VersionWithoutADaemonPrintsTheClientsAndSaysWhyNotTheServers) {
  Ctl r = RunCtl({"--addr=127.0.0.1:1", "--timeout=500ms", "version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(::testing::ContainsRegex("client +[0-9]+\\.[0-9]+"),
                           HasSubstr("server  unknown: cannot reach countersd at 127.0.0.1:1")));
  Ctl j = RunCtl({"--addr=127.0.0.1:1", "--timeout=500ms", "-o", "json", "version"});
  EXPECT_EQ(j.exit_code, 0);
  google::protobuf::Struct doc = ParseJson(j.out);
  EXPECT_EQ(Field(Field(Field(doc, "server").struct_value(), "error").struct_value(), "code")
                .string_value(),
            "UNAVAILABLE");
}

TEST_F(CounterctlVerbsTest, StatsShowsTheServersVersionUptimeAndRestarts) {
  const std::string version =
      Field(Field(ParseJson(RunJson({"version"}).out), "server").struct_value(), "version")
          .string_value();
  ASSERT_FALSE(version.empty());
  Ctl text = Run({"stats"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, AllOf(HasSubstr("version        " + version + "\n"),
                              ::testing::ContainsRegex("uptime         [0-9]+s\n"),
                              ::testing::ContainsRegex("restarts       (none|[a-z]+ [0-9])")));
  google::protobuf::Struct doc = ParseJson(RunJson({"stats"}).out);
  EXPECT_EQ(Field(doc, "server_version").string_value(), version);
  EXPECT_TRUE(Field(doc, "uptime_seconds").has_number_value());
  EXPECT_TRUE(Field(doc, "restarts").has_list_value());
}

// A daemon of its own: its handler is killed, so the shared one stays whole.
TEST(CounterctlStatsRestartsTest, AKilledHandlerShowsAsARestartAndUptimeKeepsCounting) {
  DaemonOptions options;
  options.handlers = 1;
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string addr = absl::StrCat("--addr=", (*daemon)->address());
  Ctl before = RunCtl({addr, "stats"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_THAT(before.out, HasSubstr("restarts       none\n"));
  std::vector<pid_t> handlers = (*daemon)->HandlerPids();
  ASSERT_EQ(handlers.size(), 1u);
  ASSERT_EQ(kill(handlers[0], SIGKILL), 0);
  // Polled: the respawned handler serves once the supervisor's back-off ends.
  Ctl after;
  const absl::Time deadline = MonotonicNow() + absl::Seconds(60);
  do {
    after = RunCtl({addr, "--timeout=5s", "stats"});
  } while (!(after.exit_code == 0 && absl::StrContains(after.out, "restarts       handler")) &&
           MonotonicNow() < deadline);
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_THAT(after.out, HasSubstr("restarts       handler 1 signaled\n"));
  google::protobuf::Struct doc = ParseJson(RunCtl({addr, "-o", "json", "stats"}).out);
  const auto& restarts = Field(doc, "restarts").list_value();
  ASSERT_EQ(restarts.values_size(), 1);
  EXPECT_EQ(Field(restarts.values(0).struct_value(), "role").string_value(), "handler");
  EXPECT_EQ(Field(restarts.values(0).struct_value(), "reason").string_value(), "signaled");
  EXPECT_EQ(Field(restarts.values(0).struct_value(), "count").number_value(), 1);
}

TEST_F(CounterctlVerbsTest, UsageErrorsUnderJsonAreOneJsonDocumentAndExit2) {
  const std::vector<std::vector<std::string>> cases = {
      {"-o", "json", "frobnicate"},         {"--output=json", "inc", "k", "abc"},
      {"inc", "k", "--nope", "-o", "json"}, {"-ojson", "--addr=localhost", "stats"},
      {"-o", "json", "--addr", "get", "x"}, {"-o", "json"},  // no verb
  };
  for (const std::vector<std::string>& args : cases) {
    Ctl r = RunCtl(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ");
    const google::protobuf::Struct doc = ParseJson(r.out);
    const google::protobuf::Struct& error = Field(doc, "error").struct_value();
    EXPECT_EQ(Field(error, "code").string_value(), "INVALID_ARGUMENT") << absl::StrJoin(args, " ");
    EXPECT_THAT(Field(error, "message").string_value(), Not(IsEmpty()));
    EXPECT_THAT(r.err, HasSubstr("--help")) << absl::StrJoin(args, " ");
  }
  Ctl env = RunCtl({"frobnicate"}, {"COUNTERS_OUTPUT=json"});
  EXPECT_EQ(env.exit_code, 2);
  EXPECT_EQ(Field(Field(ParseJson(env.out), "error").struct_value(), "code").string_value(),
            "INVALID_ARGUMENT");
}

TEST_F(CounterctlVerbsTest, AMistypedVerbGetsADidYouMean) {
  Ctl r = Run({"gte", "k"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown verb \"gte\"; did you mean \"get\"?"));
  EXPECT_THAT(Run({"stast"}).err, HasSubstr("did you mean \"stats\"?"));
  EXPECT_THAT(Run({"list", "--limt=2"}).err, HasSubstr("did you mean --limit?"));
}

TEST_F(CounterctlVerbsTest, AddressWithoutAPortOrTakenFromAVerbIsAUsageError) {
  Ctl no_port = RunCtl({"--addr=localhost", "get", "k"});
  EXPECT_EQ(no_port.exit_code, 2);
  EXPECT_THAT(no_port.err, HasSubstr("--addr: \"localhost\" has no port"));
  Ctl verb = RunCtl({"--addr", "get", "x"});
  EXPECT_EQ(verb.exit_code, 2);
  EXPECT_THAT(verb.err, HasSubstr("\"get\" is a verb"));
  Ctl env = RunCtl({"get", "k"}, {"COUNTERS_ADDR=localhost"});
  EXPECT_EQ(env.exit_code, 2);
  EXPECT_THAT(env.err, HasSubstr("$COUNTERS_ADDR"));
  // unix: needs no port; nothing listens there, so the call fails (exit 1), not the parse.
  EXPECT_EQ(RunCtl({"--addr=unix:/nonexistent/sock", "--timeout=500ms", "get", "k"}).exit_code, 1);
}

TEST_F(CounterctlVerbsTest, GlobalFlagsComeFromCountersVariablesAndTheCommandLineWins) {
  const std::string k = Key("k");
  const std::vector<std::string> env = {absl::StrCat("COUNTERS_ADDR=", daemon_->address()),
                                        "COUNTERS_OUTPUT=json", "COUNTERS_TIMEOUT=3s"};
  Ctl json = RunCtl({"inc", k, "2"}, env);
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, absl::StrCat("{\"key\":\"", k, "\",\"value\":2}\n"));
  Ctl text = RunCtl({"-o", "text", "get", k}, env);
  EXPECT_EQ(text.out, "2\n");
  Ctl bad = RunCtl({"get", k},
                   {absl::StrCat("COUNTERS_ADDR=", daemon_->address()), "COUNTERS_TIMEOUT=soon"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("$COUNTERS_TIMEOUT must be a duration"));
  Ctl flag_wins =
      RunCtl({"--timeout=2s", "get", k},
             {absl::StrCat("COUNTERS_ADDR=", daemon_->address()), "COUNTERS_TIMEOUT=soon"});
  EXPECT_EQ(flag_wins.exit_code, 0) << flag_wins.err;
  Ctl missing_ca = RunCtl({"get", k}, {"COUNTERS_CACERT=/nonexistent/ca.crt"});
  EXPECT_EQ(missing_ca.exit_code, 2);
  EXPECT_THAT(missing_ca.err, HasSubstr("$COUNTERS_CACERT=/nonexistent/ca.crt: cannot read"));
  // The help names each flag's variable.
  EXPECT_THAT(RunCtl({"--help"}).out,
              AllOf(HasSubstr("[$COUNTERS_ADDR]"), HasSubstr("[$COUNTERS_TIMEOUT]"),
                    HasSubstr("[$COUNTERS_OUTPUT]"), HasSubstr("[$COUNTERS_TOKEN_FILE]"),
                    HasSubstr("[$COUNTERS_CACERT]"), HasSubstr("-o, --output=text|json")));
}

TEST_F(CounterctlVerbsTest, HealthExitsWithTheCodesItsHelpNames) {
  const std::string help = RunCtl({"health", "--help"}).out;
  EXPECT_THAT(help, AllOf(HasSubstr("  0  SERVING"), HasSubstr("  1  NOT_SERVING"),
                          HasSubstr("  2  usage error"), HasSubstr("  3  the daemon knows no")));
  EXPECT_EQ(Run({"health"}).exit_code, 0);
  EXPECT_EQ(Run({"health", "--service=no.such.Service"}).exit_code, 3);
  EXPECT_EQ(Run({"health", "extra"}).exit_code, 2);
  EXPECT_EQ(RunCtl({"--addr=127.0.0.1:1", "--timeout=500ms", "health"}).exit_code, 1);
}

TEST_F(CounterctlVerbsTest, BenchHelpNamesTheDefaultEngineItUses) {
  EXPECT_THAT(RunCtl({"bench", "--help"}).out,
              AllOf(HasSubstr("async, the default"), Not(HasSubstr("(gRPC callback API"))));
  Ctl r = RunJson({"bench", "--rpc=increment", "--requests=50", "--warmup=0", "--concurrency=2",
                   "--connections=1", "--key-prefix=" + Key("")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Field(ParseJson(r.out), "api").string_value(), "async");
}

// Sources `counterctl completion bash` in bash, completes `words` with the
// cursor on the last one, and returns the offers, space-separated.
std::string Complete(const std::vector<std::string>& words) {
  std::vector<std::string> quoted;
  for (const std::string& w : words) quoted.push_back(absl::StrCat("'", w, "'"));
  const std::string script =
      absl::StrCat("set -e; source <('", CounterctlPath(), "' completion bash); COMP_WORDS=(",
                   absl::StrJoin(quoted, " "), "); COMP_CWORD=", words.size() - 1,
                   "; _counterctl; echo \"${COMPREPLY[*]}\"");
  absl::StatusOr<CommandResult> r = RunCommand({"/bin/bash", "-c", script});
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->err;
  std::string out = r->out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST(CounterctlCompletionTest, TheScriptIsValidBash) {
  absl::StatusOr<CommandResult> r = RunCommand(
      {"/bin/bash", "-c", absl::StrCat("'", CounterctlPath(), "' completion bash | bash -n")});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  Ctl zsh = RunCtl({"completion", "zsh"});
  EXPECT_EQ(zsh.exit_code, 2);
  EXPECT_THAT(zsh.err, HasSubstr("no completion for shell \"zsh\""));
}

TEST(CounterctlCompletionTest, CompletesVerbsFlagsAndArguments) {
  EXPECT_EQ(Complete({"counterctl", "inc"}), "inc");
  EXPECT_EQ(Complete({"counterctl", "de"}), "dec del");
  EXPECT_EQ(Complete({"counterctl", "--addr", "h:1", "-o", "json", "sta"}), "stats");
  const std::string all = Complete({"counterctl", ""});
  for (const char* verb : {"batch", "version", "completion", "inspect", "token", "help"}) {
    EXPECT_THAT(all, HasSubstr(verb));
  }
  EXPECT_EQ(Complete({"counterctl", "list", "--l"}), "--limit");
  EXPECT_EQ(Complete({"counterctl", "batch", "--p"}), "--pipe");
  EXPECT_EQ(Complete({"counterctl", "--ti"}), "--timeout");
  EXPECT_EQ(Complete({"counterctl", "token", ""}), "new hash");
  EXPECT_EQ(Complete({"counterctl", "completion", ""}), "bash");
  EXPECT_EQ(Complete({"counterctl", "help", "ver"}), "version");
  EXPECT_THAT(Complete({"counterctl", "--cacert", "/e"}), HasSubstr("/etc"));
  EXPECT_EQ(Complete({"counterctl", "frob", ""}), "");
  EXPECT_EQ(Complete({"counterctl", "-o", ""}), "text json");
  EXPECT_EQ(Complete({"counterctl", "bench", "--rpc", "b"}), "batch");
  EXPECT_EQ(Complete({"counterctl", "token", "new", "--role", ""}), "read write admin");
  EXPECT_EQ(Complete({"counterctl", "--timeout", ""}), "");  // a value: nothing to offer
}

// inc --durable: answered once the increment is in the daemon's log of
// durable writes (shared/write_ahead_log.h), which then holds its record.
TEST_F(CounterctlVerbsTest, IncDurableIsInTheLogOfDurableWritesWhenItReturns) {
  const std::string key = Key("durable");
  Ctl r = RunJson({"inc", "--durable", key, "7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"value\":7"));
  absl::StatusOr<std::vector<WalRecord>> log = ReadWal(daemon_->data_dir());
  ASSERT_TRUE(log.ok()) << log.status();
  bool found = false;
  for (const WalRecord& rec : *log) {
    for (const WalOp& op : rec.ops) found |= op.key == key && op.value == 7;
  }
  EXPECT_TRUE(found) << "no record of " << key << " in the log";
  EXPECT_EQ(Value(key), 7);
}

}  // namespace
}  // namespace countersd::testing
