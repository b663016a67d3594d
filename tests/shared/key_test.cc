#include "shared/key.h"

#include <string>

#include "gtest/gtest.h"

namespace countersd {
namespace {

TEST(ValidateKey, AcceptsAsciiAndMultibyteUtf8) {
  EXPECT_TRUE(ValidateKey("requests:/api/v1").ok());
  EXPECT_TRUE(ValidateKey("zähler-計数-🚀").ok());
  EXPECT_TRUE(ValidateKey(std::string(kMaxKeyBytes, 'k')).ok());
}

TEST(ValidateKey, RejectsEmptyKeyNamingTheRule) {
  absl::Status s = ValidateKey("");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("empty"), std::string::npos);
}

TEST(ValidateKey, RejectsKeyOneByteOverTheLimit) {
  absl::Status s = ValidateKey(std::string(kMaxKeyBytes + 1, 'k'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("limit is 160 bytes"), std::string::npos) << s;
}

TEST(ValidateKey, RejectsControlCharacters) {
  for (std::string key : {std::string("a\nb"), std::string("a\0b", 3), std::string("tab\there"),
                          std::string("del\x7f"), std::string("c1\xc2\x85")}) {
    absl::Status s = ValidateKey(key);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_NE(std::string(s.message()).find("control characters"), std::string::npos) << s;
  }
}

TEST(ValidateKey, RejectsInvalidUtf8) {
  for (std::string key : {std::string("\xff"), std::string("a\xc3"), std::string("\xc0\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
    absl::Status s = ValidateKey(key);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(s.message()).find("UTF-8"), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace countersd
