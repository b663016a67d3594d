// Helpers for tests that run the real counterctl binary.
#ifndef COUNTERSD_TESTS_CLIENT_CTL_TEST_UTIL_H_
#define COUNTERSD_TESTS_CLIENT_CTL_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {

// What one counterctl run did. exit_code is 128+signal if it crashed.
struct Ctl {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs counterctl with `args` (no implicit --addr). Fails the test (and
// returns exit_code -1) if it could not be run or ran past 120 s.
inline Ctl RunCtl(const std::vector<std::string>& args,
                  const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> argv = {CounterctlPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> r = RunCommand(argv, absl::Seconds(120), extra_env);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  return Ctl{r->exit_code, r->out, r->err};
}

// Parses one JSON document with protobuf's JSON parser (numbers become
// doubles: exact up to 2^53, enough for test values). Fails the test on
// malformed JSON.
inline google::protobuf::Struct ParseJson(const std::string& text) {
  google::protobuf::Struct s;
  auto status = google::protobuf::util::JsonStringToMessage(text, &s);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in: " << text;
  return s;
}

inline const google::protobuf::Value& Field(const google::protobuf::Struct& s,
                                            const std::string& name) {
  static const google::protobuf::Value kMissing;
  auto it = s.fields().find(name);
  EXPECT_TRUE(it != s.fields().end()) << "no field \"" << name << "\"";
  return it == s.fields().end() ? kMissing : it->second;
}

inline std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_CLIENT_CTL_TEST_UTIL_H_
