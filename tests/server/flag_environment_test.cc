// COUNTERSD_<FLAG> variables (server/flag_environment.h) over a made-up
// environment and flags of the test's own.
#include "server/flag_environment.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, envtest_count, 1, "a number");
ABSL_FLAG(std::vector<std::string>, envtest_list, {}, "a list");
ABSL_FLAG(bool, envtest_switch, false, "a boolean");

namespace countersd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kFlags[] = {"envtest_count", "envtest_list", "envtest_switch"};

// A null-terminated environment of `entries`.
class FakeEnvironment {
 public:
  explicit FakeEnvironment(std::vector<std::string> entries) : entries_(std::move(entries)) {
    for (std::string& e : entries_) pointers_.push_back(e.data());
    pointers_.push_back(nullptr);
  }
  char** envp() { return pointers_.data(); }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

class FlagEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_envtest_count, 1);
    absl::SetFlag(&FLAGS_envtest_list, {});
    absl::SetFlag(&FLAGS_envtest_switch, false);
  }
};

TEST_F(FlagEnvironmentTest, TheVariableIsTheFlagInUpperCase) {
  EXPECT_EQ(FlagVariable("max_connections"), "COUNTERSD_MAX_CONNECTIONS");
  EXPECT_EQ(FlagVariable("max-connections"), "COUNTERSD_MAX_CONNECTIONS");
}

TEST_F(FlagEnvironmentTest, SetVariablesApplyWithTheFlagsOwnSyntax) {
  FakeEnvironment env({"PATH=/bin", "COUNTERSD_ENVTEST_COUNT=7", "COUNTERSD_ENVTEST_LIST=a,b,c",
                       "COUNTERSD_ENVTEST_SWITCH=true"});
  absl::StatusOr<FlagEnvironment> r = ApplyFlagEnvironment(kFlags, {}, env.envp());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->applied, ElementsAre("envtest_count", "envtest_list", "envtest_switch"));
  EXPECT_THAT(r->warnings, IsEmpty());
  EXPECT_EQ(absl::GetFlag(FLAGS_envtest_count), 7);
  EXPECT_THAT(absl::GetFlag(FLAGS_envtest_list), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(absl::GetFlag(FLAGS_envtest_switch));
}

TEST_F(FlagEnvironmentTest, AGivenFlagAndAnEmptyVariableAreLeftAlone) {
  FakeEnvironment env({"COUNTERSD_ENVTEST_COUNT=not a number", "COUNTERSD_ENVTEST_LIST="});
  absl::StatusOr<FlagEnvironment> r = ApplyFlagEnvironment(kFlags, {"envtest_count"}, env.envp());
  ASSERT_TRUE(r.ok()) << r.status();  // the bad value is never parsed
  EXPECT_THAT(r->applied, IsEmpty());
  EXPECT_EQ(absl::GetFlag(FLAGS_envtest_count), 1);
  EXPECT_THAT(absl::GetFlag(FLAGS_envtest_list), IsEmpty());
}

TEST_F(FlagEnvironmentTest, ABadValueNamesTheVariableTheValueAndTheFlag) {
  FakeEnvironment env({"COUNTERSD_ENVTEST_SWITCH=maybe"});
  absl::StatusOr<FlagEnvironment> r = ApplyFlagEnvironment(kFlags, {}, env.envp());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("bad value 'maybe' in environment variable COUNTERSD_ENVTEST_SWITCH "
                        "(--envtest-switch)"));
}

TEST_F(FlagEnvironmentTest, UnknownVariablesWarnWithTheClosestFlagsVariable) {
  FakeEnvironment env({"COUNTERSD_ENVTEST_COUNTS=2", "countersd_envtest_list=x",
                       "COUNTERSD_SOMETHING_ELSE=1", "COUNTERSD_FLAGS=--x", "COUNTERSD_PORT=1",
                       "OTHER_ENVTEST_COUNT=3"});
  absl::StatusOr<FlagEnvironment> r = ApplyFlagEnvironment(kFlags, {}, env.envp());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->applied, IsEmpty());
  EXPECT_THAT(
      r->warnings,
      ElementsAre("ignoring environment variable COUNTERSD_ENVTEST_COUNTS: no countersd flag is "
                  "set by it (did you mean COUNTERSD_ENVTEST_COUNT?)",
                  "ignoring environment variable countersd_envtest_list: no countersd flag is "
                  "set by it (did you mean COUNTERSD_ENVTEST_LIST?)",
                  "ignoring environment variable COUNTERSD_SOMETHING_ELSE: no countersd flag is "
                  "set by it"));
}

TEST_F(FlagEnvironmentTest, ErrorsAboutAFlagSayWhichVariableSetIt) {
  EXPECT_EQ(EnvironmentNote("--envtest-count=0 is out of range", {"envtest_count"}),
            " (--envtest-count is from COUNTERSD_ENVTEST_COUNT)");
  EXPECT_EQ(EnvironmentNote("--envtest-count=0 is out of range", {"envtest_list"}), "");
  EXPECT_EQ(FlagSource("envtest_count", {"envtest_count"}), "COUNTERSD_ENVTEST_COUNT");
  EXPECT_EQ(FlagSource("envtest_count", {}), "--envtest-count");
}

}  // namespace
}  // namespace countersd
