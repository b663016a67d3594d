// counterctl's pieces that need no daemon: the command-line parser, the JSON
// writer, column alignment and the latency histogram.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/counterctl/cli.h"
#include "client/counterctl/latency_histogram.h"
#include "client/counterctl/output.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace countersd::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A temporary file (a token file), removed when the test ends, whatever
// assertion stopped it.
class TempFile {
 public:
  explicit TempFile(std::string_view contents) {
    int fd = mkstemp(path_);
    EXPECT_GE(fd, 0) << "mkstemp";
    if (fd >= 0) close(fd);
    Write(contents);
  }
  ~TempFile() { unlink(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  void Write(std::string_view contents) {
    int fd = open(path_, O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0) << path_;
    ASSERT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    close(fd);
  }
  const char* path() const { return path_; }

 private:
  char path_[32] = "/tmp/counterctl-token-XXXXXX";
};

// Parses `args` with the variables in `env` (none else).
absl::StatusOr<Invocation> ParseWith(std::vector<std::string> args,
                                     std::map<std::string, std::string> env) {
  args.insert(args.begin(), "counterctl");
  Invocation inv;
  absl::Status s = ParseCommandLine(
      args,
      [&env](const std::string& name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      &inv);
  if (!s.ok()) return s;
  return inv;
}

// Parses `args` with $COUNTERS_ADDR set to `env_address` (unset if null).
absl::StatusOr<Invocation> Parse(std::vector<std::string> args, const char* env_address = nullptr) {
  std::map<std::string, std::string> env;
  if (env_address != nullptr) env["COUNTERS_ADDR"] = env_address;
  return ParseWith(std::move(args), std::move(env));
}

TEST(ParseCommandLineTest, NegativeNumbersAreArgumentsNotFlags) {
  absl::StatusOr<Invocation> inc = Parse({"inc", "k", "-3"});
  ASSERT_TRUE(inc.ok()) << inc.status();
  EXPECT_EQ(inc->verb->name, "inc");
  EXPECT_THAT(inc->args, ElementsAre("k", "-3"));

  absl::StatusOr<Invocation> set = Parse({"set", "k", "-5"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT(set->args, ElementsAre("k", "-5"));

  absl::StatusOr<Invocation> cas = Parse({"cas", "k", "-1", "-9223372036854775808"});
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_THAT(cas->args, ElementsAre("k", "-1", "-9223372036854775808"));
}

TEST(ParseCommandLineTest, GlobalFlagsGoBeforeOrAfterTheVerbInBothForms) {
  absl::StatusOr<Invocation> a = Parse({"--addr", "h:1", "get", "k", "--output=json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->address, "h:1");
  EXPECT_TRUE(a->json());
  EXPECT_THAT(a->args, ElementsAre("k"));

  absl::StatusOr<Invocation> b = Parse({"get", "k", "--addr=h:2", "--timeout", "250ms"});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->address, "h:2");
  EXPECT_EQ(b->timeout, absl::Milliseconds(250));
  EXPECT_FALSE(b->json());
}

TEST(ParseCommandLineTest, AddressComesFromFlagThenEnvironmentThenDefault) {
  EXPECT_EQ(Parse({"health"})->address, "127.0.0.1:50051");
  EXPECT_EQ(Parse({"health"}, "env:7")->address, "env:7");
  EXPECT_EQ(Parse({"health", "--addr=flag:8"}, "env:7")->address, "flag:8");
  EXPECT_EQ(Parse({"health"}, "")->address, "127.0.0.1:50051");
}

TEST(ParseCommandLineTest, TlsFilesMustBeReadableAndCertGoesWithKey) {
  absl::StatusOr<Invocation> missing = Parse({"health", "--cacert=/nonexistent/ca.crt"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("--cacert=/nonexistent/ca.crt"));
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot read"));

  absl::StatusOr<Invocation> half = Parse({"health", "--cert=/dev/null"});
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(half.status().message(), HasSubstr("--cert and --key"));

  absl::StatusOr<Invocation> tls =
      Parse({"--cacert=/dev/null", "health", "--cert=/dev/null", "--key=/dev/null"});
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(tls->security.tls());
  EXPECT_EQ(tls->security.ca_file, "/dev/null");
  EXPECT_EQ(tls->security.key_file, "/dev/null");
  EXPECT_FALSE(Parse({"health"})->security.tls());
}

TEST(FailureKindTest, TlsAuthenticationAndDenialAreToldApart) {
  const absl::Status handshake = absl::UnavailableError(
      "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Ssl "
      "handshake failed: SSL_ERROR_SSL: error:0A000086:SSL routines::certificate verify failed");
  EXPECT_EQ(ClassifyFailure(handshake, true), FailureKind::kTls);
  EXPECT_THAT(DescribeFailure(handshake, true), HasSubstr("TLS handshake failed"));
  const absl::Status closed = absl::UnavailableError(
      "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:1: Socket "
      "closed");
  EXPECT_EQ(ClassifyFailure(closed, false), FailureKind::kClosedAtSetUp);
  EXPECT_THAT(DescribeFailure(closed, false), HasSubstr("--cacert"));
  EXPECT_THAT(DescribeFailure(closed, true), HasSubstr("--cert"));
  const absl::Status unauth = absl::UnauthenticatedError("no credentials");
  EXPECT_EQ(ClassifyFailure(unauth, false), FailureKind::kUnauthenticated);
  EXPECT_THAT(DescribeFailure(unauth, false), HasSubstr("authentication failed"));
  const absl::Status denied = absl::PermissionDeniedError("role read may not Increment");
  EXPECT_EQ(ClassifyFailure(denied, true), FailureKind::kDenied);
  EXPECT_THAT(DescribeFailure(denied, true), HasSubstr("permission denied"));
  const absl::Status refused =
      absl::UnavailableError("failed to connect to all addresses; Connection refused");
  EXPECT_EQ(ClassifyFailure(refused, false), FailureKind::kOther);
  EXPECT_EQ(DescribeFailure(refused, false), "");
  EXPECT_EQ(ClassifyFailure(absl::NotFoundError("x"), true), FailureKind::kOther);
}

TEST(ParseCommandLineTest, TokenComesFromTokenFileThenEnvironment) {
  TempFile file("  file-token\n");
  const std::string path = file.path();
  auto parse = [](std::vector<std::string> args, const char* env_token) {
    std::map<std::string, std::string> env;
    if (env_token != nullptr) env["COUNTERS_TOKEN"] = env_token;
    return ParseWith(std::move(args), std::move(env));
  };
  EXPECT_EQ(parse({"health"}, nullptr)->token, "");
  EXPECT_EQ(parse({"health"}, "env-token\n")->token, "env-token");
  EXPECT_EQ(parse({"health", absl::StrCat("--token-file=", path)}, "env-token")->token,
            "file-token");
  absl::StatusOr<Invocation> missing = parse({"health", "--token-file=/nonexistent/t"}, nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("--token-file: cannot open /nonexistent/t"));
  file.Write("\n");
  absl::StatusOr<Invocation> empty =
      parse({"health", absl::StrCat("--token-file=", path)}, nullptr);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("is empty"));
  file.Write("two words\n");
  EXPECT_FALSE(parse({"health", absl::StrCat("--token-file=", path)}, nullptr).ok());
}

TEST(ParseCommandLineTest, DoubleDashEndsFlags) {
  absl::StatusOr<Invocation> inv = Parse({"get", "--", "-odd", "--help"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_FALSE(inv->help);
  EXPECT_THAT(inv->args, ElementsAre("-odd", "--help"));
}

TEST(ParseCommandLineTest, VerbFlagsAreParsedAfterTheVerbOnly) {
  absl::StatusOr<Invocation> inv = Parse({"inspect", "/x", "--dump"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->Has("dump"));
  EXPECT_FALSE(Parse({"--dump", "inspect", "/x"}).ok());
  EXPECT_FALSE(Parse({"get", "k", "--dump"}).ok());  // not a flag of get
}

TEST(ParseCommandLineTest, FlagValuesMayBeSeparateOrJoined) {
  absl::StatusOr<Invocation> inv = Parse({"bench", "--rpc", "batch", "--keys=10"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->Flag("rpc"), "batch");
  EXPECT_EQ(inv->Flag("keys"), "10");
  EXPECT_EQ(inv->Flag("batch", "100"), "100");
}

TEST(ParseCommandLineTest, UsageErrorsSayWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"frob"}, "unknown verb \"frob\""},
      {{"get", "k", "--nope"}, "unknown flag --nope for get"},
      {{"--nope"}, "unknown flag --nope"},
      {{"get", "k", "-x"}, "unknown flag \"-x\""},
      {{"get", "k", "--addr"}, "flag --addr needs a value"},
      {{"inspect", "p", "--dump=yes"}, "flag --dump takes no value"},
      {{"get"}, "missing arguments: expected KEY..."},
      {{"inc"}, "missing arguments: expected KEY [DELTA]"},
      {{"inc", "k", "1", "2"}, "too many arguments for inc"},
      {{"del"}, "missing arguments: expected KEY..."},
      {{"stats", "x"}, "too many arguments for stats"},
      {{"get", "k", "--output=yaml"}, "--output must be text or json"},
      {{"get", "k", "--timeout=soon"}, "--timeout must be a duration"},
      {{"get", "k", "--timeout=0"}, "--timeout must be positive"},
      {{"get", "k", "--addr="}, "--addr must not be empty"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Invocation> inv = Parse(c.args);
    ASSERT_FALSE(inv.ok()) << c.args[0];
    EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(inv.status().message()), HasSubstr(c.message));
  }
}

TEST(ParseCommandLineTest, HelpIsRecognisedEverywhere) {
  absl::StatusOr<Invocation> overall = Parse({"--help"});
  ASSERT_TRUE(overall.ok());
  EXPECT_TRUE(overall->help);
  EXPECT_EQ(overall->verb, nullptr);

  for (const std::vector<std::string>& args : {std::vector<std::string>{"inc", "--help"},
                                               {"inc", "-h"},
                                               {"help", "inc"},
                                               {"inc", "k", "notanumber", "--help"}}) {
    absl::StatusOr<Invocation> inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_TRUE(inv->help);
    ASSERT_NE(inv->verb, nullptr);
    EXPECT_EQ(inv->verb->name, "inc");
  }
  EXPECT_FALSE(Parse({"help", "frob"}).ok());
}

TEST(ParseCommandLineTest, EveryGlobalFlagHasAVariableAndTheCommandLineWins) {
  absl::StatusOr<Invocation> env = ParseWith({"stats"}, {{"COUNTERS_ADDR", "h:1"},
                                                         {"COUNTERS_TIMEOUT", "250ms"},
                                                         {"COUNTERS_OUTPUT", "json"},
                                                         {"COUNTERS_CACERT", "/dev/null"},
                                                         {"COUNTERS_CERT", "/dev/null"},
                                                         {"COUNTERS_KEY", "/dev/null"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->address, "h:1");
  EXPECT_EQ(env->timeout, absl::Milliseconds(250));
  EXPECT_TRUE(env->json());
  EXPECT_EQ(env->security.ca_file, "/dev/null");
  EXPECT_EQ(env->security.key_file, "/dev/null");

  absl::StatusOr<Invocation> flags = ParseWith(
      {"stats", "--addr=h:2", "--timeout=1s", "-o", "text"},
      {{"COUNTERS_ADDR", "h:1"}, {"COUNTERS_TIMEOUT", "250ms"}, {"COUNTERS_OUTPUT", "json"}});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(flags->address, "h:2");
  EXPECT_EQ(flags->timeout, absl::Seconds(1));
  EXPECT_FALSE(flags->json());

  // An empty variable is unset.
  absl::StatusOr<Invocation> empty = ParseWith({"stats"}, {{"COUNTERS_TIMEOUT", ""}});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->timeout, absl::Seconds(5));
}

TEST(ParseCommandLineTest, ABadVariableIsAUsageErrorNamingIt) {
  for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
           {"COUNTERS_TIMEOUT", "soon"},
           {"COUNTERS_OUTPUT", "yaml"},
           {"COUNTERS_EXACTLY_ONCE", "yes"},
           {"COUNTERS_ADDR", "localhost"},
           {"COUNTERS_CACERT", "/nonexistent/ca.crt"},
           {"COUNTERS_TOKEN_FILE", "/nonexistent/t"}}) {
    absl::StatusOr<Invocation> inv = ParseWith({"stats"}, {{var, value}});
    ASSERT_FALSE(inv.ok()) << var;
    EXPECT_THAT(std::string(inv.status().message()), HasSubstr("$" + var)) << var;
  }
  // The flag wins, so a bad variable under a good flag is no error.
  EXPECT_TRUE(ParseWith({"stats", "--timeout=1s"}, {{"COUNTERS_TIMEOUT", "soon"}}).ok());
}

TEST(ParseCommandLineTest, ExactlyOnceIsOnUnlessTheFlagOrItsVariableTurnsItOff) {
  absl::StatusOr<Invocation> plain = ParseWith({"inc", "k"}, {});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(plain->exactly_once);
  absl::StatusOr<Invocation> off = ParseWith({"--exactly-once=off", "inc", "k"}, {});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->exactly_once);
  absl::StatusOr<Invocation> env = ParseWith({"inc", "k"}, {{"COUNTERS_EXACTLY_ONCE", "off"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_FALSE(env->exactly_once);
  absl::StatusOr<Invocation> wins =
      ParseWith({"inc", "k", "--exactly-once", "on"}, {{"COUNTERS_EXACTLY_ONCE", "off"}});
  ASSERT_TRUE(wins.ok()) << wins.status();
  EXPECT_TRUE(wins->exactly_once);
  absl::StatusOr<Invocation> bad = ParseWith({"--exactly-once=maybe", "inc", "k"}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--exactly-once must be on or off, got \"maybe\"");
}

TEST(ParseCommandLineTest, TokenFileVariableWinsOverTheTokenVariable) {
  TempFile file("file-token\n");
  absl::StatusOr<Invocation> inv =
      ParseWith({"stats"}, {{"COUNTERS_TOKEN", "env-token"}, {"COUNTERS_TOKEN_FILE", file.path()}});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->token, "file-token");
}

TEST(ParseCommandLineTest, ShortOutputFlagInEveryForm) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"-o", "json", "stats"},
                                               {"stats", "-ojson"},
                                               {"stats", "-o=json"}}) {
    absl::StatusOr<Invocation> inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_TRUE(inv->json());
  }
  EXPECT_FALSE(Parse({"stats", "-o", "text"})->json());
  EXPECT_FALSE(Parse({"stats", "-o", "yaml"}).ok());
  EXPECT_FALSE(Parse({"stats", "-o"}).ok());
}

TEST(ParseCommandLineTest, AddressNeedsAPortUnlessUnix) {
  for (const char* good : {"h:1", "127.0.0.1:50051", "[::1]:50051", "unix:/run/c.sock"}) {
    EXPECT_TRUE(Parse({"stats", absl::StrCat("--addr=", good)}).ok()) << good;
  }
  for (const auto& [bad, message] :
       std::vector<std::pair<std::string, std::string>>{{"localhost", "has no port"},
                                                        {"localhost:", "bad port"},
                                                        {"h:0", "bad port"},
                                                        {"h:65536", "bad port"},
                                                        {"h:5x", "bad port"},
                                                        {":50051", "no host"},
                                                        {"::1", "brackets"},
                                                        {"unix:", "no path"}}) {
    absl::StatusOr<Invocation> inv = Parse({"stats", "--addr=" + bad});
    ASSERT_FALSE(inv.ok()) << bad;
    EXPECT_THAT(std::string(inv.status().message()), HasSubstr(message)) << bad;
    EXPECT_THAT(std::string(inv.status().message()), HasSubstr("--addr")) << bad;
  }
}

TEST(ParseCommandLineTest, AFlagValueBeforeTheVerbCannotBeAVerb) {
  absl::StatusOr<Invocation> inv = Parse({"--addr", "get", "x"});
  ASSERT_FALSE(inv.ok());
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr("\"get\" is a verb"));
  // After the verb a value may be any word (bench --rpc get).
  absl::StatusOr<Invocation> bench = Parse({"bench", "--rpc", "get"});
  ASSERT_TRUE(bench.ok()) << bench.status();
  EXPECT_EQ(bench->Flag("rpc"), "get");
}

TEST(ParseCommandLineTest, MistypedVerbsAndFlagsGetADidYouMean) {
  EXPECT_THAT(std::string(Parse({"gte", "k"}).status().message()),
              HasSubstr("unknown verb \"gte\"; did you mean \"get\"?"));
  EXPECT_THAT(std::string(Parse({"list", "--limt=3"}).status().message()),
              HasSubstr("did you mean --limit?"));
  EXPECT_THAT(std::string(Parse({"stats", "--adr=h:1"}).status().message()),
              HasSubstr("did you mean --addr?"));
  EXPECT_THAT(std::string(Parse({"frobnicate"}).status().message()),
              ::testing::Not(HasSubstr("did you mean")));
}

TEST(ParseCommandLineTest, AUsageErrorKeepsTheOutputFormatAndTheVerb) {
  Invocation inv;
  absl::Status s = ParseCommandLine(
      {"counterctl", "gte", "-o", "json"},
      [](const std::string&) -> const char* { return nullptr; }, &inv);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(inv.json());
  s = ParseCommandLine(
      {"counterctl", "-o", "json", "inc", "k", "--nope"},
      [](const std::string&) -> const char* { return nullptr; }, &inv);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(inv.json());
  ASSERT_NE(inv.verb, nullptr);
  EXPECT_EQ(inv.verb->name, "inc");
}

TEST(ParseCommandLineTest, AFlagWithChoicesTakesOnlyThem) {
  EXPECT_EQ(Parse({"bench", "--rpc=get"})->Flag("rpc"), "get");
  absl::StatusOr<Invocation> bad = Parse({"bench", "--rpc", "frob"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "--rpc must be increment, batch, get, stream or accumulate, got \"frob\"");
  EXPECT_EQ(Parse({"token", "new", "--role=admin"})->Flag("role"), "admin");
  EXPECT_FALSE(Parse({"token", "new", "--role=root"}).ok());
  absl::StatusOr<Invocation> env = ParseWith({"stats"}, {{"COUNTERS_OUTPUT", "yaml"}});
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().message(), "$COUNTERS_OUTPUT must be text or json, got \"yaml\"");
}

TEST(ParseCommandLineTest, TimeoutAcceptsUnitsAndBareSeconds) {
  EXPECT_EQ(Parse({"stats", "--timeout=2"})->timeout, absl::Seconds(2));
  EXPECT_EQ(Parse({"stats", "--timeout=1.5s"})->timeout, absl::Milliseconds(1500));
  EXPECT_EQ(Parse({"stats", "--timeout=1m"})->timeout, absl::Minutes(1));
  EXPECT_EQ(Parse({"stats"})->timeout, absl::Seconds(5));
  EXPECT_FALSE(Parse({"stats", "--timeout=-1s"}).ok());
  EXPECT_FALSE(Parse({"stats", "--timeout=inf"}).ok());
}

TEST(HelpTest, EveryVerbHasHelpNamingItsArgumentsAndFlags) {
  const std::string overall = OverallHelp();
  for (const char* name : {"inc", "dec", "get", "set", "cas", "del", "list", "batch", "snapshot",
                           "stats", "health", "version", "bench", "inspect", "token"}) {
    ASSERT_NE(FindVerb(name), nullptr) << name;
  }
  for (const VerbSpec& v : AllVerbs()) {
    const VerbSpec* verb = &v;
    const std::string name(v.name);
    EXPECT_THAT(overall, HasSubstr(std::string("  ") + name + " ")) << name;
    const std::string help = VerbHelp(*verb);
    EXPECT_THAT(help, HasSubstr(absl::StrCat("Usage: counterctl ", name))) << name;
    if (name != "completion") {
      EXPECT_THAT(help, HasSubstr("JSON: {")) << name;
    }
    EXPECT_THAT(help, HasSubstr("--addr=ADDR")) << name;
    for (const FlagSpec& f : verb->flags) {
      EXPECT_THAT(help, HasSubstr(absl::StrCat("--", f.name))) << name;
    }
  }
}

TEST(ParseInt64ArgTest, AcceptsTheWholeRangeAndRejectsEverythingElse) {
  EXPECT_EQ(*ParseInt64Arg("-9223372036854775808", "X"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*ParseInt64Arg("9223372036854775807", "X"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*ParseInt64Arg("-3", "X"), -3);
  EXPECT_EQ(*ParseInt64Arg("+4", "X"), 4);
  for (const char* bad : {"", "abc", "1.5", "9223372036854775808", "-9223372036854775809", " 5",
                          "5 ", "0x10", "1e3"}) {
    absl::StatusOr<int64_t> v = ParseInt64Arg(bad, "DELTA");
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_THAT(std::string(v.status().message()),
                HasSubstr("DELTA must be a signed 64-bit integer"));
  }
}

TEST(JsonWriterTest, WritesNestedDocumentsWithCommasAndExactIntegers) {
  JsonWriter j;
  j.BeginObject().Field("a", int64_t{1}).Key("list").BeginArray();
  j.Int(std::numeric_limits<int64_t>::min()).Uint(std::numeric_limits<uint64_t>::max());
  j.BeginObject().EndObject().Null().Bool(false);
  j.EndArray().Field("s", "x").EndObject();
  EXPECT_EQ(j.str(),
            "{\"a\":1,\"list\":[-9223372036854775808,18446744073709551615,{},null,false],"
            "\"s\":\"x\"}");
}

TEST(JsonWriterTest, EscapesQuotesBackslashesAndControlCharactersButNotUtf8) {
  std::string out;
  AppendJsonString(&out, std::string("q\"b\\n\nt\t\x01\x7f \xc3\xa9", 13));
  EXPECT_EQ(out, "\"q\\\"b\\\\n\\nt\\t\\u0001\\u007f \xc3\xa9\"");
}

TEST(JsonWriterTest, DoublesAreFiniteOrNull) {
  JsonWriter j;
  j.BeginArray().Double(1.5).Double(std::numeric_limits<double>::infinity());
  j.Double(1231560.04).Double(2.0).Double(-0.0001).Double(0.1234).EndArray();
  EXPECT_EQ(j.str(), "[1.5,null,1231560.04,2,0,0.123]");
}

TEST(FormatColumnsTest, AlignsColumnsAndRightAlignsNumbers) {
  const std::string out =
      FormatColumns({{"a", "1"}, {"long-key", "-100"}, {"\xc3\xa9t\xc3\xa9", "22"}}, {false, true});
  EXPECT_EQ(out,
            "a            1\n"
            "long-key  -100\n"
            "\xc3\xa9t\xc3\xa9         22\n");
}

TEST(FormatColumnsTest, LeavesNoTrailingBlanks) {
  EXPECT_EQ(FormatColumns({{"key", ""}, {"k", "v"}}), "key\nk    v\n");
}

TEST(WithThousandsTest, GroupsDigitsByThree) {
  EXPECT_EQ(WithThousands(0), "0");
  EXPECT_EQ(WithThousands(999), "999");
  EXPECT_EQ(WithThousands(1000), "1,000");
  EXPECT_EQ(WithThousands(12345), "12,345");
  EXPECT_EQ(WithThousands(1234567), "1,234,567");
  EXPECT_EQ(WithThousands(18446744073709551615ull), "18,446,744,073,709,551,615");
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 0; v < 64; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 64u);
  EXPECT_EQ(h.Percentile(0.5), 31u);
  EXPECT_EQ(h.Percentile(1.0), 63u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 63u);
}

TEST(LatencyHistogramTest, PercentilesAreNeverBelowTheTruthAndWithinBucketResolution) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(12.0, 1.5);  // ~160 us median, long tail
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const uint64_t truth = values[static_cast<size_t>(std::ceil(q * values.size())) - 1];
    const uint64_t got = h.Percentile(q);
    EXPECT_GE(got, truth) << q;
    EXPECT_LE(static_cast<double>(got), truth * (1.0 + 1.0 / 64) + 1) << q;
  }
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.Percentile(1.0), values.back());
}

TEST(LatencyHistogramTest, BucketEdgesCoverEveryValueOnce) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{63}, uint64_t{64}, uint64_t{65}, uint64_t{127}, uint64_t{128},
        uint64_t{1000003}, uint64_t{1} << 40, std::numeric_limits<uint64_t>::max()}) {
    const size_t i = LatencyHistogram::Index(v);
    ASSERT_LT(i, LatencyHistogram::kBuckets) << v;
    EXPECT_GE(LatencyHistogram::UpperEdge(i), v) << v;
    EXPECT_EQ(LatencyHistogram::Index(LatencyHistogram::UpperEdge(i)), i) << v;
    if (i > 0) {
      EXPECT_LT(LatencyHistogram::UpperEdge(i - 1), v) << v;
    }
  }
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1; v < 100000; v += 7) {
    ((v % 3) ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(a.Percentile(q), all.Percentile(q));
}

TEST(LatencyHistogramTest, EmptyHistogramReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.Percentile(0.99), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

}  // namespace
}  // namespace countersd::ctl
