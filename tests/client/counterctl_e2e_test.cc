// End-to-end tests of counterctl: the real binary against a real countersd
// (started by the e2e harness on a free port with a temporary data dir).
// Every verb in text and JSON, exit codes, and bad input.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ctl_test_util.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::AllOf;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// A TCP port on 127.0.0.1 that refuses connections: bound but not listening,
// and kept bound so nobody else takes it during the test.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~RefusingPort() { close(fd_); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class CounterctlTest : public SharedDaemonTest {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(CounterctlPath().empty()) << "counterctl binary not known to the harness";
    DaemonOptions options;
    options.handlers = 2;
    options.capacity = 10000;
    StartSharedDaemon(options);
  }

  // counterctl --addr=<daemon> args...
  static Ctl Run(std::vector<std::string> args) {
    args.insert(args.begin(), absl::StrCat("--addr=", daemon_->address()));
    return RunCtl(args);
  }
  static Ctl RunJson(std::vector<std::string> args) {
    args.insert(args.begin(), "--output=json");
    return Run(std::move(args));
  }
  // A key unique to the running test, so tests sharing the daemon do not meet.
  static std::string Key(const std::string& suffix) { return TestKey(suffix); }
};

TEST_F(CounterctlTest, IncAndDecPrintTheNewValueWithDefaultAndNegativeDeltas) {
  const std::string k = Key("k");
  auto expect = [&](std::vector<std::string> args, const std::string& out) {
    Ctl r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, out) << args[0];
    EXPECT_THAT(r.err, IsEmpty());
  };
  expect({"inc", k}, "1\n");  // created at 0, then +1
  expect({"inc", k, "5"}, "6\n");
  expect({"inc", k, "-3"}, "3\n");
  expect({"dec", k}, "2\n");
  expect({"dec", k, "10"}, "-8\n");
  expect({"dec", k, "-9"}, "1\n");
}

TEST_F(CounterctlTest, IncJsonNamesKeyAndValue) {
  const std::string k = Key("k");
  Ctl r = RunJson({"inc", k, "41"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("{\"key\":\"", k, "\",\"value\":41}\n"));
}

TEST_F(CounterctlTest, IncPastInt64MaxFailsWithExit1AndKeepsTheValue) {
  const std::string k = Key("k");
  ASSERT_EQ(Run({"set", k, "9223372036854775807"}).exit_code, 0);
  Ctl r = Run({"inc", k});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, StartsWith("counterctl inc: "));
  Ctl j = RunJson({"inc", k});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(Field(Field(ParseJson(j.out), "error").struct_value(), "code").string_value(),
            "OUT_OF_RANGE");
  EXPECT_EQ(Run({"get", k}).out, "9223372036854775807\n");
}

TEST_F(CounterctlTest, DecOfInt64MinDeltaIsAUsageError) {
  Ctl r = Run({"dec", Key("k"), "-9223372036854775808"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot be negated"));
}

TEST_F(CounterctlTest, GetOneKeyPrintsJustTheValue) {
  const std::string k = Key("k");
  ASSERT_EQ(Run({"set", k, "-5"}).exit_code, 0);
  Ctl r = Run({"get", k});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "-5\n");
}

TEST_F(CounterctlTest, GetManyKeysPrintsAlignedRowsInArgumentOrder) {
  const std::string a = Key("a"), long_key = Key("a-much-longer-key");
  ASSERT_EQ(Run({"set", a, "1"}).exit_code, 0);
  ASSERT_EQ(Run({"set", long_key, "-12345"}).exit_code, 0);
  Ctl r = Run({"get", long_key, a});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_THAT(lines[0], AllOf(StartsWith(long_key + "  "), ::testing::EndsWith(" -12345")));
  EXPECT_THAT(lines[1], AllOf(StartsWith(a + " "), ::testing::EndsWith(" 1")));
  EXPECT_EQ(lines[0].size(), lines[1].size()) << "values are right-aligned in one column";
}

TEST_F(CounterctlTest, GetMissingKeyExits3WithAMessageAndNoData) {
  Ctl r = Run({"get", Key("missing")});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("not found"));
}

TEST_F(CounterctlTest, GetJsonListsEveryKeyWithFoundAndExits3IfOneIsMissing) {
  const std::string a = Key("a"), missing = Key("missing");
  ASSERT_EQ(Run({"set", a, "7"}).exit_code, 0);
  Ctl r = RunJson({"get", a, missing});
  EXPECT_EQ(r.exit_code, 3);
  google::protobuf::Struct doc = ParseJson(r.out);
  const auto& list = Field(doc, "counters").list_value();
  ASSERT_EQ(list.values_size(), 2);
  const auto& first = list.values(0).struct_value();
  EXPECT_EQ(Field(first, "key").string_value(), a);
  EXPECT_EQ(Field(first, "value").number_value(), 7);
  EXPECT_TRUE(Field(first, "found").bool_value());
  const auto& second = list.values(1).struct_value();
  EXPECT_EQ(Field(second, "key").string_value(), missing);
  EXPECT_FALSE(Field(second, "found").bool_value());

  Ctl ok = RunJson({"get", a});
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.out,
            absl::StrCat("{\"counters\":[{\"key\":\"", a, "\",\"value\":7,\"found\":true}]}\n"));
}

TEST_F(CounterctlTest, SetPrintsTheValueAndWhatItReplaced) {
  const std::string k = Key("k");
  Ctl first = Run({"set", k, "-5"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, "-5 (new counter)\n");
  Ctl second = Run({"set", k, "10"});
  EXPECT_EQ(second.out, "10 (was -5)\n");
  Ctl json = RunJson({"set", k, "11"});
  EXPECT_EQ(json.out, absl::StrCat("{\"key\":\"", k, "\",\"value\":11,\"previous_value\":10}\n"));
  Ctl fresh = RunJson({"set", Key("fresh"), "0"});
  EXPECT_EQ(Field(ParseJson(fresh.out), "previous_value").kind_case(),
            google::protobuf::Value::kNullValue);
  EXPECT_EQ(Run({"get", k}).out, "11\n");
}

TEST_F(CounterctlTest, CasAppliesOnlyWhenTheValueMatches) {
  const std::string k = Key("k");
  Ctl applied = Run({"cas", k, "0", "5"});  // missing counts as 0
  EXPECT_EQ(applied.exit_code, 0) << applied.err;
  EXPECT_EQ(applied.out, "applied: 5\n");
  Ctl refused = Run({"cas", k, "4", "-6"});
  EXPECT_EQ(refused.exit_code, 0) << refused.err;
  EXPECT_EQ(refused.out, "not applied: the value is 5, not 4\n");
  Ctl json = RunJson({"cas", k, "5", "-6"});
  google::protobuf::Struct doc = ParseJson(json.out);
  EXPECT_TRUE(Field(doc, "applied").bool_value());
  EXPECT_EQ(Field(doc, "value").number_value(), -6);
  EXPECT_EQ(Field(doc, "expected").number_value(), 5);
  Ctl json_refused = RunJson({"cas", k, "5", "1"});
  EXPECT_FALSE(Field(ParseJson(json_refused.out), "applied").bool_value());
  EXPECT_EQ(Run({"get", k}).out, "-6\n");
}

TEST_F(CounterctlTest, DelPrintsThePreviousValueAndExits3WhenMissing) {
  const std::string k = Key("k");
  ASSERT_EQ(Run({"set", k, "8"}).exit_code, 0);
  Ctl r = Run({"del", k});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "deleted (was 8)\n");
  Ctl again = Run({"del", k});
  EXPECT_EQ(again.exit_code, 3);
  EXPECT_THAT(again.out, IsEmpty());
  EXPECT_THAT(again.err, HasSubstr("not found"));
  Ctl json = RunJson({"del", k});
  EXPECT_EQ(json.exit_code, 3);
  EXPECT_EQ(Field(Field(ParseJson(json.out), "error").struct_value(), "code").string_value(),
            "NOT_FOUND");
  ASSERT_EQ(Run({"set", k, "9"}).exit_code, 0);
  EXPECT_EQ(RunJson({"del", k}).out, absl::StrCat("{\"key\":\"", k, "\",\"previous_value\":9}\n"));
}

TEST_F(CounterctlTest, ListPrintsMatchingCountersSortedAndAligned) {
  const std::string p = Key("");
  ASSERT_EQ(Run({"set", p + "b", "2"}).exit_code, 0);
  ASSERT_EQ(Run({"set", p + "a", "-100"}).exit_code, 0);
  ASSERT_EQ(Run({"set", p + "cc", "3"}).exit_code, 0);
  ASSERT_EQ(Run({"set", Key("x").substr(0, p.size() - 1) + "!", "1"}).exit_code,
            0);  // not in prefix
  Ctl r = Run({"list", p});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre(p + "a   -100", p + "b      2", p + "cc     3"));

  Ctl json = RunJson({"list", p});
  google::protobuf::Struct doc = ParseJson(json.out);
  EXPECT_EQ(Field(doc, "prefix").string_value(), p);
  EXPECT_FALSE(Field(doc, "truncated").bool_value());
  const auto& list = Field(doc, "counters").list_value();
  ASSERT_EQ(list.values_size(), 3);
  EXPECT_EQ(Field(list.values(0).struct_value(), "key").string_value(), p + "a");
  EXPECT_EQ(Field(list.values(0).struct_value(), "value").number_value(), -100);

  Ctl limited = Run({"list", p, "--limit=2"});
  EXPECT_EQ(limited.exit_code, 0);
  EXPECT_EQ(Lines(limited.out).size(), 2u);
  EXPECT_THAT(limited.err, HasSubstr("--limit=2"));
}

TEST_F(CounterctlTest, ListOfANonUtf8PrefixIsTheServersInvalidArgumentNamingThePrefix) {
  // counterctl sends the bytes as given (protobuf only logs on serializing);
  // the server answers INVALID_ARGUMENT, not INTERNAL (a server bug).
  Ctl r = Run({"list", "ab\xff"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("counterctl list: prefix must be valid UTF-8 (invalid byte "
                               "sequence at offset 2)"));
  EXPECT_THAT(r.out, IsEmpty());
  Ctl json = RunJson({"list", "\xff"});
  EXPECT_EQ(json.exit_code, 1) << json.err;
  const google::protobuf::Struct error = Field(ParseJson(json.out), "error").struct_value();
  EXPECT_EQ(Field(error, "code").string_value(), "INVALID_ARGUMENT");
  EXPECT_EQ(Field(error, "message").string_value(),
            "prefix must be valid UTF-8 (invalid byte sequence at offset 0)");
}

TEST_F(CounterctlTest, ListPagesThroughMoreThanOneServerPage) {
  const std::string p = Key("");
  CounterClient client(daemon_->address());
  std::vector<std::string> keys;
  for (int i = 0; i < 2500; ++i) keys.push_back(absl::StrCat(p, i));
  for (size_t i = 0; i < keys.size(); i += 500) {
    std::vector<IncrementOp> ops;
    for (size_t k = i; k < i + 500; ++k) ops.push_back({keys[k], 1});
    ASSERT_TRUE(client.IncrementBatch(ops).ok());
  }
  Ctl r = Run({"list", p});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2500u);
  EXPECT_TRUE(std::is_sorted(lines.begin(), lines.end()));
}

TEST_F(CounterctlTest, SnapshotReportsAGrowingGeneration) {
  Ctl first = RunJson({"snapshot"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  google::protobuf::Struct a = ParseJson(first.out);
  Ctl second = RunJson({"snapshot"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  google::protobuf::Struct b = ParseJson(second.out);
  EXPECT_GT(Field(b, "generation").number_value(), Field(a, "generation").number_value());
  EXPECT_GE(Field(b, "counters").number_value(), 0);
  EXPECT_GE(Field(b, "bytes").number_value(), 0);
  Ctl text = Run({"snapshot"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, AllOf(StartsWith("snapshot generation "), HasSubstr(" is durable: ")));
}

TEST_F(CounterctlTest, StatsShowsCapacityAndEveryHandler) {
  Ctl json = RunJson({"stats"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  google::protobuf::Struct doc = ParseJson(json.out);
  EXPECT_EQ(Field(doc, "capacity").number_value(), 10000);
  EXPECT_EQ(Field(doc, "handlers").list_value().values_size(), 2);
  EXPECT_GT(Field(doc, "served_by_pid").number_value(), 0);
  EXPECT_TRUE(Field(doc, "last_snapshot").has_struct_value());
  const google::protobuf::Struct& durability = Field(doc, "durability").struct_value();
  EXPECT_EQ(Field(durability, "consecutive_snapshot_failures").number_value(), 0);
  EXPECT_EQ(Field(durability, "snapshot_failures").number_value(), 0);
  // This counterctl's own connection is accepted and open while it asks.
  const google::protobuf::Struct& conns = Field(doc, "connections").struct_value();
  EXPECT_GE(Field(conns, "accepted").number_value(), 1);
  EXPECT_GE(Field(conns, "open").number_value(), 1);
  EXPECT_EQ(Field(conns, "refused_over_cap").number_value(), 0);
  EXPECT_EQ(Field(conns, "handshake_timeouts").number_value(), 0);
  double handlers_open = 0;
  for (const auto& h : Field(doc, "handlers").list_value().values()) {
    const google::protobuf::Struct& hc = Field(h.struct_value(), "connections").struct_value();
    EXPECT_TRUE(hc.fields().contains("accepted") && hc.fields().contains("refused_over_cap") &&
                hc.fields().contains("handshake_timeouts"));
    handlers_open += Field(hc, "open").number_value();
  }
  EXPECT_EQ(handlers_open, Field(conns, "open").number_value());

  Ctl text = Run({"stats"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out,
              AllOf(HasSubstr("capacity       10,000"), HasSubstr("handlers (2):"),
                    HasSubstr("PID  CALLS  ERRORS  OPEN  ACCEPTED  REFUSED  TIMEOUTS"),
                    HasSubstr("durability     "), HasSubstr("(0 failed since start)"),
                    ContainsRegex("connections +[0-9,]+ open; since start [1-9][0-9,]* accepted, "
                                  "0 refused over the cap, 0 handshake timeouts")));
}

TEST_F(CounterctlTest, HealthSaysServing) {
  Ctl text = Run({"health"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out, "SERVING\n");
  Ctl json = RunJson({"health"});
  EXPECT_EQ(json.out, "{\"service\":\"\",\"status\":\"SERVING\"}\n");
  Ctl unknown = Run({"health", "--service=no.such.Service"});
  EXPECT_EQ(unknown.exit_code, 3);  // grpc.health.v1 answers NOT_FOUND
}

TEST_F(CounterctlTest, BadArgumentsAreUsageErrorsWithClearMessages) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"inc", "k", "abc"}, "DELTA must be a signed 64-bit integer, got \"abc\""},
      {{"inc", "k", "1.5"}, "DELTA must be a signed 64-bit integer"},
      {{"set", "k", "99999999999999999999"}, "VALUE must be a signed 64-bit integer"},
      {{"cas", "k", "x", "1"}, "EXPECTED must be a signed 64-bit integer"},
      {{"inc"}, "missing arguments: expected KEY [DELTA]"},
      {{"get"}, "missing arguments: expected KEY..."},
      {{"set", "k"}, "missing arguments: expected KEY VALUE"},
      {{"del"}, "missing arguments"},
      {{"frobnicate"}, "unknown verb \"frobnicate\""},
      {{"get", "k", "--bogus"}, "unknown flag --bogus"},
      {{"get", "k", "--output=xml"}, "--output must be text or json"},
      {{"inc", ""}, "bad KEY"},
      {{"inc", std::string("a\x01"
                           "b")},
       "bad KEY"},
      {{"inc", std::string(200, 'k')}, "bad KEY"},
      {{"bench", "--rpc=frob"}, "--rpc must be increment, batch, get, stream or accumulate"},
      {{"bench", "--rpc=increment", "--streams=2"}, "--streams and --window apply to --rpc=stream"},
      {{"bench", "--rpc=stream", "--requests=5"}, "--requests and --concurrency apply to the unary"},
      {{"bench", "--rpc=stream", "--flush-interval=1s"}, "--flush-interval applies to --rpc=accumulate"},
      {{"bench", "--rpc=accumulate", "--streams=2"}, "--streams applies to --rpc=stream only"},
      {{"bench", "--concurrency=0"}, "--concurrency must be an integer from 1"},
      {{"list", "--limit=-1"}, "--limit must be an integer from 1"},
      {{"bench", "--api=sync"}, "--api must be async or callback"},
      {{"bench", "--api=callback", "--threads=2"},
       "--threads applies to --api=async and --rpc=accumulate only"},
  };
  for (const Case& c : cases) {
    Ctl r = Run(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.err;
    EXPECT_THAT(r.out, IsEmpty()) << c.args[0];
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args[0];
    EXPECT_THAT(r.err, HasSubstr("--help")) << c.args[0];
  }
}

TEST_F(CounterctlTest, NoVerbPrintsUsageToStderrAndExits2) {
  Ctl r = RunCtl({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("Usage: counterctl"));
}

TEST_F(CounterctlTest, HelpWorksOverallAndForEveryVerbWithoutADaemon) {
  Ctl overall = RunCtl({"--help"});
  EXPECT_EQ(overall.exit_code, 0);
  const std::vector<std::string> verbs = {"inc",   "dec",    "get",   "set",
                                          "cas",   "del",    "list",  "snapshot",
                                          "stats", "health", "bench", "inspect"};
  for (const std::string& v : verbs) {
    EXPECT_THAT(overall.out, HasSubstr("  " + v + " ")) << v;
    Ctl help = RunCtl({v, "--help"});
    EXPECT_EQ(help.exit_code, 0) << v;
    EXPECT_THAT(help.out, StartsWith("Usage: counterctl " + v)) << v;
    EXPECT_THAT(help.err, IsEmpty()) << v;
  }
  EXPECT_THAT(
      RunCtl({"bench", "--help"}).out,
      AllOf(HasSubstr("--rpc=increment|batch|get"), HasSubstr("--connections=C"), HasSubstr("--concurrency=K"),
            HasSubstr("--duration=DURATION"), HasSubstr("--requests=N")));
  EXPECT_THAT(RunCtl({"inspect", "--help"}).out, HasSubstr("--dump"));
}

TEST_F(CounterctlTest, UnreachableAddressIsExit1WithAClearMessageForEveryVerb) {
  RefusingPort port;
  const std::vector<std::vector<std::string>> invocations = {
      {"inc", "k"},
      {"dec", "k"},
      {"get", "k"},
      {"set", "k", "1"},
      {"cas", "k", "0", "1"},
      {"del", "k"},
      {"list"},
      {"snapshot"},
      {"stats"},
      {"health"},
      {"bench", "--duration=1s"},
  };
  for (std::vector<std::string> args : invocations) {
    const std::string verb = args[0];
    args.insert(args.begin(), {absl::StrCat("--addr=", port.address()), "--timeout=3s"});
    Ctl r = RunCtl(args);
    EXPECT_EQ(r.exit_code, 1) << verb << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("counterctl ", verb, ": cannot reach countersd at ",
                                              port.address())))
        << verb;
    EXPECT_THAT(r.out, IsEmpty()) << verb;
  }
  Ctl json = RunCtl({absl::StrCat("--addr=", port.address()), "--output=json", "get", "k"});
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_EQ(Field(Field(ParseJson(json.out), "error").struct_value(), "code").string_value(),
            "UNAVAILABLE");
}

TEST_F(CounterctlTest, AddressComesFromCountersAddrWhenNoFlagIsGiven) {
  const std::string k = Key("k");
  Ctl r = RunCtl({"inc", k, "4"}, {absl::StrCat("COUNTERS_ADDR=", daemon_->address())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "4\n");
  RefusingPort port;
  Ctl flag_wins = RunCtl({"--addr", daemon_->address(), "get", k},
                         {absl::StrCat("COUNTERS_ADDR=", port.address())});
  EXPECT_EQ(flag_wins.exit_code, 0) << flag_wins.err;
  EXPECT_EQ(flag_wins.out, "4\n");
}

TEST_F(CounterctlTest, KeysStartingWithDashWorkAfterDoubleDash) {
  Ctl r = Run({"set", "--", "-dash-key", "-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Run({"get", "--", "-dash-key"}).out, "-1\n");
}

TEST_F(CounterctlTest, BenchIncrementCountsExactlyTheRequestsItReportsWithEitherApi) {
  for (const std::string api : {"async", "callback"}) {
    SCOPED_TRACE(api);
    const std::string p = Key(api + "/");
    Ctl r = RunJson({"bench", "--rpc=increment", "--requests=3000", "--warmup=0", "--keys=7",
                     "--connections=3", "--concurrency=16", "--api=" + api, "--key-prefix=" + p});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    google::protobuf::Struct doc = ParseJson(r.out);
    EXPECT_EQ(Field(doc, "ok").number_value(), 3000);
    EXPECT_EQ(Field(doc, "errors").number_value(), 0);
    EXPECT_EQ(Field(doc, "connections").number_value(), 3);
    EXPECT_EQ(Field(doc, "api").string_value(), api);
    EXPECT_GT(Field(doc, "calls_per_second").number_value(), 0);
    const auto& lat = Field(doc, "latency_us").struct_value();
    EXPECT_GT(Field(lat, "p50").number_value(), 0);
    EXPECT_LE(Field(lat, "p50").number_value(), Field(lat, "p90").number_value());
    EXPECT_LE(Field(lat, "p90").number_value(), Field(lat, "p99").number_value());
    EXPECT_LE(Field(lat, "p99").number_value(), Field(lat, "max").number_value());

    // The increments really landed, each once.
    CounterClient client(daemon_->address());
    absl::StatusOr<std::vector<CounterEntry>> all = client.ListAll(p);
    ASSERT_TRUE(all.ok()) << all.status();
    int64_t sum = 0;
    for (const CounterEntry& e : *all) sum += e.value;
    EXPECT_EQ(all->size(), 7u);
    EXPECT_EQ(sum, 3000);
  }
}

TEST_F(CounterctlTest, BenchBatchAppliesBatchTimesRequestsIncrements) {
  const std::string p = Key("");
  Ctl r = RunJson({"bench", "--rpc=batch", "--batch=10", "--requests=200", "--warmup=0",
                   "--keys=50", "--key-prefix=" + p});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  google::protobuf::Struct doc = ParseJson(r.out);
  EXPECT_EQ(Field(doc, "ok").number_value(), 200);
  EXPECT_EQ(Field(doc, "batch").number_value(), 10);
  EXPECT_NEAR(Field(doc, "ops_per_second").number_value(),
              10 * Field(doc, "calls_per_second").number_value(), 0.1);  // JSON keeps 3 decimals
  CounterClient client(daemon_->address());
  absl::StatusOr<std::vector<CounterEntry>> all = client.ListAll(p);
  ASSERT_TRUE(all.ok()) << all.status();
  int64_t sum = 0;
  for (const CounterEntry& e : *all) sum += e.value;
  EXPECT_EQ(sum, 2000);
}

TEST_F(CounterctlTest, BenchStreamAppliesBatchTimesTheMessagesItCounts) {
  const std::string p = Key("");
  Ctl r = RunJson({"bench", "--rpc=stream", "--batch=10", "--duration=1s", "--warmup=0",
                   "--keys=20", "--streams=2", "--window=4", "--key-prefix=" + p});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  google::protobuf::Struct doc = ParseJson(r.out);
  const double ok = Field(doc, "ok").number_value();
  EXPECT_GT(ok, 0);
  EXPECT_EQ(Field(doc, "unknown").number_value(), 0);
  EXPECT_NEAR(Field(doc, "increments_per_second").number_value(),
              10 * Field(doc, "messages_per_second").number_value(), 0.1);
  // No warm-up: every message sent is measured, so the daemon holds exactly
  // ten increments per message counted.
  CounterClient client(daemon_->address());
  absl::StatusOr<std::vector<CounterEntry>> all = client.ListAll(p);
  ASSERT_TRUE(all.ok()) << all.status();
  int64_t sum = 0;
  for (const CounterEntry& e : *all) sum += e.value;
  EXPECT_EQ(sum, static_cast<int64_t>(10 * ok));
}

TEST_F(CounterctlTest, BenchAccumulateReadsBackExactlyWhatItAdded) {
  const std::string p = Key("");
  Ctl r = RunJson({"bench", "--rpc=accumulate", "--duration=1s", "--keys=30", "--threads=2",
                   "--flush-interval=20ms", "--key-prefix=" + p});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  google::protobuf::Struct doc = ParseJson(r.out);
  EXPECT_TRUE(Field(doc, "verified").bool_value()) << r.out;
  const double adds = Field(doc, "adds").number_value();
  EXPECT_GT(adds, 0);
  EXPECT_GT(Field(doc, "acked_increments").number_value(), 0);
  EXPECT_LE(Field(doc, "acked_increments").number_value(), adds);
  CounterClient client(daemon_->address());
  absl::StatusOr<std::vector<CounterEntry>> all = client.ListAll(p);
  ASSERT_TRUE(all.ok()) << all.status();
  int64_t sum = 0;
  for (const CounterEntry& e : *all) sum += e.value;
  EXPECT_EQ(sum, static_cast<int64_t>(adds));
}

TEST_F(CounterctlTest, BenchGetTextReportIsReadable) {
  Ctl r = Run({"bench", "--rpc=get", "--duration=1s", "--warmup=200ms", "--keys=100",
               "--concurrency=4", "--key-prefix=" + Key("")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              AllOf(HasSubstr("rpc         get (Get)"), HasSubstr("throughput  "),
                    HasSubstr(" calls/s"), HasSubstr("latency     p50 "), HasSubstr(" 0 errors")));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("\r"))) << "no progress line when piped";
}

}  // namespace
}  // namespace countersd::testing
