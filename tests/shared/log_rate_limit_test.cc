// LogRateLimit (shared/log_rate_limit.h): one line per key per interval,
// and the admitted line's count of those left out since the last.
#include "shared/log_rate_limit.h"

#include "gtest/gtest.h"

namespace countersd {
namespace {

TEST(LogRateLimitTest, OneLinePerKeyPerIntervalAndTheCountOfThoseLeftOut) {
  LogRateLimit limit(absl::Seconds(1));
  const absl::Time t0 = absl::FromUnixSeconds(1000);  // any epoch: only differences count
  uint64_t left_out = 99;
  ASSERT_TRUE(limit.Admit("grpc a.cc:1", t0, &left_out));
  EXPECT_EQ(left_out, 0u);
  EXPECT_FALSE(limit.Admit("grpc a.cc:1", t0 + absl::Milliseconds(1), &left_out));
  EXPECT_FALSE(limit.Admit("grpc a.cc:1", t0 + absl::Milliseconds(999), &left_out));
  // Another key has its own interval.
  ASSERT_TRUE(limit.Admit("grpc a.cc:2", t0 + absl::Milliseconds(1), &left_out));
  EXPECT_EQ(left_out, 0u);
  ASSERT_TRUE(limit.Admit("grpc a.cc:1", t0 + absl::Seconds(1), &left_out));
  EXPECT_EQ(left_out, 2u);
  EXPECT_FALSE(limit.Admit("grpc a.cc:1", t0 + absl::Milliseconds(1500), &left_out));
  ASSERT_TRUE(limit.Admit("grpc a.cc:1", t0 + absl::Seconds(5), &left_out));
  EXPECT_EQ(left_out, 1u);
}

}  // namespace
}  // namespace countersd
