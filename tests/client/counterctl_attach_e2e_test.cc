// End-to-end tests of counterctl --attach=DIR (counter_store.h): the
// counter verbs attached to a real daemon's live table print what they
// print over gRPC, the daemon sees their values over gRPC, and the errors
// (no daemon, a bad key or directory, a verb that needs the RPCs) are
// clear. The real binary against a real countersd (the e2e harness).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/ctl_test_util.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class CounterctlAttachTest : public SharedDaemonTest {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(CounterctlPath().empty()) << "counterctl binary not known to the harness";
    DaemonOptions options;
    options.handlers = 2;
    options.capacity = 10000;
    StartSharedDaemon(options);
  }

  static Ctl Attached(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), absl::StrCat("--attach=", daemon_->data_dir()));
    return RunCtl(args, env);
  }
  static Ctl Rpc(std::vector<std::string> args) {
    args.insert(args.begin(), absl::StrCat("--addr=", daemon_->address()));
    return RunCtl(args);
  }

  // The value of `key` over gRPC, or nullopt if it does not exist.
  static std::optional<int64_t> Value(const std::string& key) {
    CounterClient client(daemon_->address());
    absl::StatusOr<int64_t> v = client.Get(key);
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound) << v.status();
      return std::nullopt;
    }
    return *v;
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(dir_.path(), "/", name);
    std::FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return path;
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return path;
  }

  ScopedTempDir dir_;
};

TEST_F(CounterctlAttachTest, CounterVerbsChangeTheDaemonsTableAsSeenOverGrpc) {
  const std::string k = TestKey("k");
  Ctl r = Attached({"inc", k, "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "5\n");
  EXPECT_EQ(Value(k), 5);

  r = Attached({"dec", k, "2"});
  EXPECT_EQ(r.out, "3\n");
  EXPECT_EQ(Value(k), 3);
  EXPECT_EQ(Rpc({"inc", k}).out, "4\n");  // and the other way round
  EXPECT_EQ(Attached({"get", k}).out, "4\n");

  r = Attached({"set", k, "10"});
  EXPECT_EQ(r.out, "10 (was 4)\n") << r.err;
  EXPECT_EQ(Value(k), 10);

  r = Attached({"cas", k, "10", "11"});
  EXPECT_EQ(r.out, "applied: 11\n") << r.err;
  r = Attached({"cas", k, "10", "12"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "not applied: the value is 11, not 10\n");
  EXPECT_EQ(Value(k), 11);

  r = Attached({"del", k});
  EXPECT_EQ(r.out, "deleted (was 11)\n") << r.err;
  EXPECT_EQ(Value(k), std::nullopt);
  r = Attached({"get", k});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("counter \"", k, "\" not found")));
}

// Every verb and outcome, attached and over gRPC, on keys of the same
// length: the same stdout, stderr and exit code, text and JSON.
TEST_F(CounterctlAttachTest, OutputAndExitCodesAreTheSameAsOverGrpc) {
  const std::string attached_prefix = TestKey("att/");
  const std::string rpc_prefix = TestKey("rpc/");
  const std::vector<std::vector<std::string>> steps = {
      {"inc", "$a", "5"},
      {"inc", "$a", "-3"},
      {"dec", "$a", "4"},
      {"dec", "$a"},
      {"get", "$a"},
      {"get", "$a", "$missing", "$b"},
      {"get", "$missing"},
      {"set", "$a", "10"},
      {"set", "$b", "-7"},
      {"cas", "$a", "10", "11"},
      {"cas", "$a", "10", "12"},
      {"cas", "$zero", "0", "5"},
      {"inc", "$a", "9223372036854775807"},  // overflow: OUT_OF_RANGE, exit 1
      {"get", "$a", "$b", "$zero"},
      {"del", "$a"},
      {"del", "$a"},  // not found: exit 3
      {"del", "$b", "$missing", "$zero"},
      {"inc", "$c", "x"},  // a usage error
      {"inc", "$final", "3"},
  };
  for (const bool json : {false, true}) {
    for (const std::vector<std::string>& step : steps) {
      Ctl got[2];
      for (int path = 0; path < 2; ++path) {
        const std::string& prefix = path == 0 ? attached_prefix : rpc_prefix;
        std::vector<std::string> args;
        if (json) args = {"-o", "json"};
        for (const std::string& a : step) {
          args.push_back(absl::StrReplaceAll(a, {{"$", absl::StrCat(prefix, json ? "j" : "t")}}));
        }
        got[path] = path == 0 ? Attached(args) : Rpc(args);
        got[path].out = absl::StrReplaceAll(got[path].out, {{prefix, "$"}});
        got[path].err = absl::StrReplaceAll(got[path].err, {{prefix, "$"}});
      }
      const std::string what = absl::StrCat(json ? "-o json " : "", absl::StrJoin(step, " "));
      EXPECT_EQ(got[0].exit_code, got[1].exit_code) << what << "\n" << got[0].err;
      EXPECT_EQ(got[0].out, got[1].out) << what;
      EXPECT_EQ(got[0].err, got[1].err) << what;
    }
  }
  // And the attached side's values are in the daemon's table.
  EXPECT_EQ(Value(attached_prefix + "tfinal"), 3);
  EXPECT_EQ(Value(attached_prefix + "jfinal"), 3);
  EXPECT_EQ(Value(attached_prefix + "ta"), std::nullopt);
}

TEST_F(CounterctlAttachTest, BatchIsOneAtomicCallOnTheAttachedTable) {
  const std::string a = TestKey("a"), b = TestKey("b");
  const std::string path = WriteFile("in.txt", absl::StrCat(a, " 5\n# c\n", b, " -2\n", a, " 1\n"));
  Ctl r = Attached({"batch", "--file", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre(HasSubstr(" 5"), HasSubstr("-2"), HasSubstr(" 6")));
  EXPECT_EQ(Value(a), 6);
  EXPECT_EQ(Value(b), -2);

  // One increment overflows: nothing of the batch is applied, the line named.
  const std::string over =
      WriteFile("over.txt", absl::StrCat(b, " 1\n", a, " 9223372036854775807\n"));
  Ctl o = Attached({"batch", "--file", over});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, AllOf(HasSubstr("line 2: "), HasSubstr("nothing was applied")));
  EXPECT_EQ(Value(a), 6);
  EXPECT_EQ(Value(b), -2);
}

TEST_F(CounterctlAttachTest, BatchPipeAppliesTheGoodLinesInChunksAndNeverSaysUnknown) {
  const std::string k = TestKey("k"), big = TestKey("big");
  std::string text = absl::StrCat(big, " 9223372036854775807\n");
  for (int i = 0; i < 25; ++i) absl::StrAppend(&text, k, " 2\n");
  absl::StrAppend(&text, big, " 1\n", "bad key with blanks 1\n");
  const std::string path = WriteFile("pipe.txt", text);
  Ctl r = Attached({"-o", "json", "batch", "--pipe", "--max-batch=10", "--file", path});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  google::protobuf::Struct doc = ParseJson(r.out);
  EXPECT_EQ(Field(doc, "applied").number_value(), 26);
  EXPECT_EQ(Field(doc, "failed").number_value(), 2);
  EXPECT_EQ(Field(doc, "unknown").number_value(), 0);
  const auto& failures = Field(doc, "failures").list_value();
  ASSERT_EQ(failures.values_size(), 2);
  EXPECT_EQ(Field(failures.values(0).struct_value(), "line").number_value(), 27);
  EXPECT_EQ(Field(failures.values(1).struct_value(), "line").number_value(), 28);
  EXPECT_EQ(Value(k), 50);
  EXPECT_EQ(Value(big), 9223372036854775807);
}

TEST_F(CounterctlAttachTest, ADirectoryNoDaemonOwnsIsUnavailable) {
  ScopedTempDir empty;
  Ctl r = RunCtl({absl::StrCat("--attach=", empty.path()), "inc", "k"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(
      r.err,
      AllOf(HasSubstr(absl::StrCat("cannot attach to countersd in ", empty.path(), " (--attach)")),
            HasSubstr("no countersd owns this data directory"),
            HasSubstr("start the daemon first")));
  Ctl j = RunCtl({"-o", "json", "get", "k"}, {absl::StrCat("COUNTERS_ATTACH=", empty.path())});
  EXPECT_EQ(j.exit_code, 1);
  google::protobuf::Struct error = Field(ParseJson(j.out), "error").struct_value();
  EXPECT_EQ(Field(error, "code").string_value(), "UNAVAILABLE");
  EXPECT_THAT(Field(error, "message").string_value(), HasSubstr("($COUNTERS_ATTACH)"));
}

TEST_F(CounterctlAttachTest, TheDirectoryOfAStoppedDaemonIsUnavailable) {
  ScopedTempDir data;
  DaemonOptions options;
  options.handlers = 1;
  options.capacity = 1000;
  options.data_dir = data.path();
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(options);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string attach = absl::StrCat("--attach=", data.path());
  Ctl r = RunCtl({attach, "inc", "k", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<int> status = (*d)->Terminate();
  ASSERT_TRUE(status.ok()) << status.status();

  r = RunCtl({attach, "inc", "k"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("cannot attach to countersd in "),
                           HasSubstr("no countersd owns this data directory")));
}

TEST_F(CounterctlAttachTest, BadKeysAndDirectoriesAreUsageErrors) {
  Ctl r = Attached({"inc", std::string(200, 'k')});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("counterctl inc: bad KEY"), HasSubstr("160")));
  r = Attached({"get", "ok", "bad\x01key"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad KEY"));

  r = RunCtl({"--attach=/nonexistent/countersd", "inc", "k"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("--attach=/nonexistent/countersd"),
                           HasSubstr("No such file or directory")));
  const std::string file = WriteFile("not-a-dir", "");
  r = RunCtl({"inc", "k"}, {absl::StrCat("COUNTERS_ATTACH=", file)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("$COUNTERS_ATTACH="), HasSubstr("not a directory")));
  r = RunCtl({"--attach=", "inc", "k"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--attach must not be empty"));
}

TEST_F(CounterctlAttachTest, VerbsThatNeedTheRpcsWantAddrBesideAttach) {
  const std::string k = TestKey("k");
  ASSERT_EQ(Attached({"inc", k, "7"}).exit_code, 0);
  for (const std::vector<std::string>& verb : std::vector<std::vector<std::string>>{
           {"list"}, {"snapshot"}, {"stats"}, {"health"}, {"bench", "--duration=1s"}}) {
    Ctl r = Attached(verb);
    EXPECT_EQ(r.exit_code, 2) << verb[0];
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("--attach does not apply to ", verb[0],
                                              ", which needs the daemon's RPCs: give --addr")))
        << verb[0];
  }
  Ctl e = RunCtl({"list"}, {absl::StrCat("COUNTERS_ATTACH=", daemon_->data_dir())});
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_THAT(e.err, HasSubstr("$COUNTERS_ATTACH does not apply to list"));

  // Both: the counter verbs attach, the others call --addr.
  Ctl l = Attached({"--addr", daemon_->address(), "list", k});
  EXPECT_EQ(l.exit_code, 0) << l.err;
  EXPECT_THAT(l.out, AllOf(HasSubstr(k), HasSubstr("7")));
  Ctl i = Attached({"inc", k}, {"COUNTERS_ADDR=127.0.0.1:1"});  // never called
  EXPECT_EQ(i.exit_code, 0) << i.err;
  EXPECT_EQ(i.out, "8\n");

  // version still prints the client's; the server's line says why not.
  Ctl v = Attached({"version"});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_THAT(v.out, AllOf(HasSubstr("client"), HasSubstr("--attach does not apply to version")));
  // Offline verbs do not care.
  EXPECT_EQ(Attached({"completion", "bash"}).exit_code, 0);
}

TEST_F(CounterctlAttachTest, HelpAndCompletionKnowTheFlag) {
  Ctl h = RunCtl({"--help"});
  EXPECT_THAT(h.out, AllOf(HasSubstr("--attach=DIR"), HasSubstr("[$COUNTERS_ATTACH]")));
  Ctl c = RunCtl({"completion", "bash"});
  EXPECT_THAT(c.out, HasSubstr("    --attach) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;"));
}

}  // namespace
}  // namespace countersd::testing
