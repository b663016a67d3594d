// Accumulator without a daemon: against FakeStreamServer, or against no
// server at all. The refusals of Add (bad keys, a pending sum that would
// overflow, the memory bound) with their counts and reports; a refused
// message and an unknown one reported with their keys and deltas and not
// resent; exact sums from several threads; sums kept while the server is
// away and sent once it is back; the destructor's report of what it could
// not send. The same against the real daemon: accumulator_e2e_test.cc.
#include "client/accumulator.h"

#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/monotonic_time.h"
#include "tests/client/accumulator_reports.h"
#include "tests/client/fake_stream_server.h"

namespace countersd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

AccumulatorOptions Options(Reports* reports, absl::Duration timeout = absl::Seconds(30)) {
  AccumulatorOptions o;
  o.client.timeout = timeout;
  o.client.initial_backoff = absl::Milliseconds(10);
  o.client.max_backoff = absl::Milliseconds(100);
  o.flush_interval = absl::Milliseconds(20);
  o.close_timeout = timeout;
  o.on_error = reports->Callback();
  return o;
}

// A port nobody listens on.
int FreePort() {
  FakeStreamServer gone;
  return gone.port();
}

TEST(AccumulatorTest, BadKeysAreRefusedCountedAndReported) {
  Reports reports;
  Accumulator acc(absl::StrCat("127.0.0.1:", FreePort()), Options(&reports, absl::Seconds(1)));
  EXPECT_EQ(acc.Add("", 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(acc.Add("a\x01z", 2).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(acc.Add(std::string(161, 'x'), 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(acc.Add("\xff", 4).code(), absl::StatusCode::kInvalidArgument);
  const AccumulatorStats s = acc.stats();
  EXPECT_EQ(s.bad_key_adds, 4u);
  EXPECT_EQ(s.failed_adds(), 4u);
  EXPECT_EQ(s.adds, 0u);
  EXPECT_EQ(s.keys, 0u);  // nothing held for them
  const std::vector<AccumulatorError> bad = reports.Of(AccumulatorError::kBadKey);
  ASSERT_EQ(bad.size(), 4u);
  EXPECT_THAT(bad[1].increments, UnorderedElementsAre(Pair("a\x01z", 2)));
  EXPECT_THAT(std::string(bad[0].status.message()), HasSubstr("empty"));
}

TEST(AccumulatorTest, APendingSumThatWouldOverflowRefusesThatAddOnly) {
  FakeStreamServer server;
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.flush_interval = absl::Hours(1);  // only Flush sends
  Accumulator acc(server.address(), options);
  const int64_t max = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(acc.Add("big", max - 1).ok());
  ASSERT_TRUE(acc.Add("big", 1).ok());
  EXPECT_EQ(acc.Add("big", 1).code(), absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(acc.Add("small", std::numeric_limits<int64_t>::min()).ok());
  EXPECT_EQ(acc.Add("small", -1).code(), absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(acc.Add("other", 7).ok());
  // The refused adds are in Flush's answer, the rest arrived whole.
  const absl::Status flushed = acc.Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kOutOfRange) << flushed;
  EXPECT_EQ(server.Value("big"), max);
  EXPECT_EQ(server.Value("small"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(server.Value("other"), 7);
  EXPECT_EQ(acc.stats().overflow_adds, 2u);
  const std::vector<AccumulatorError> over = reports.Of(AccumulatorError::kOverflow);
  ASSERT_EQ(over.size(), 2u);
  EXPECT_THAT(over[0].increments, UnorderedElementsAre(Pair("big", 1)));
  EXPECT_TRUE(acc.Flush().ok());  // the error was reported once
}

TEST(AccumulatorTest, SumsFromSeveralThreadsArriveExactly) {
  FakeStreamServer server;
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.max_batch = 7;  // many messages
  Accumulator acc(server.address(), options);
  constexpr int kThreads = 4, kKeys = 50, kAdds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAdds; ++i) {
        ASSERT_TRUE(acc.Add(absl::StrCat("k", (i * 7 + t) % kKeys), (i % 3) - 1 + t).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(acc.Flush().ok());
  std::map<int, int64_t> want;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kAdds; ++i) want[(i * 7 + t) % kKeys] += (i % 3) - 1 + t;
  }
  for (const auto& [k, v] : want) EXPECT_EQ(server.Value(absl::StrCat("k", k)), v) << k;
  EXPECT_EQ(acc.stats().adds, uint64_t{kThreads} * kAdds);
  EXPECT_EQ(reports.size(), 0u);
}

TEST(AccumulatorTest, AnOverflowRefusesTheIncrementItNamesAndTheRestGoOutAgain) {
  FakeStreamServer server;
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.flush_interval = absl::Hours(1);
  Accumulator acc(server.address(), options);
  ASSERT_TRUE(acc.Add("refuse/a", 5).ok());
  ASSERT_TRUE(acc.Add("b", 2).ok());
  ASSERT_TRUE(acc.Add("c", 3).ok());
  // One message, refused (nothing applied) naming refuse/a; b and c are
  // sent again, and Flush waits for them.
  const absl::Status flushed = acc.Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kOutOfRange) << flushed;
  const std::vector<AccumulatorError> refused = reports.Of(AccumulatorError::kRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_THAT(refused[0].increments, UnorderedElementsAre(Pair("refuse/a", 5)));
  EXPECT_EQ(server.Value("b"), 2);
  EXPECT_EQ(server.Value("c"), 3);
  EXPECT_EQ(server.Value("refuse/a"), 0);
  const AccumulatorStats s = acc.stats();
  EXPECT_EQ(s.refused_messages, 1u);
  EXPECT_EQ(s.refused_increments, 1u);
  EXPECT_EQ(s.acked_increments, 2u);
}

TEST(AccumulatorTest, AMessageOfOneRefusedIncrementIsReportedWhole) {
  FakeStreamServer server;
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.flush_interval = absl::Hours(1);
  Accumulator acc(server.address(), options);
  ASSERT_TRUE(acc.Add("refuse/only", -4).ok());
  EXPECT_EQ(acc.Flush().code(), absl::StatusCode::kOutOfRange);
  const std::vector<AccumulatorError> refused = reports.Of(AccumulatorError::kRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_THAT(refused[0].increments, UnorderedElementsAre(Pair("refuse/only", -4)));
  EXPECT_EQ(acc.stats().refused_increments, 1u);
  EXPECT_TRUE(acc.Flush().ok());  // nothing resent, nothing pending
}

TEST(AccumulatorTest, AnUnknownMessageIsReportedAndNeverResent) {
  FakeStreamServer server;
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.flush_interval = absl::Hours(1);
  Accumulator acc(server.address(), options);
  ASSERT_TRUE(acc.Add("crash/a", 3).ok());
  const absl::Status flushed = acc.Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable) << flushed;
  EXPECT_THAT(std::string(flushed.message()), HasSubstr("outcome unknown"));
  const std::vector<AccumulatorError> unknown = reports.Of(AccumulatorError::kUnknown);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_THAT(unknown[0].increments, UnorderedElementsAre(Pair("crash/a", 3)));
  // The stream reopens; the unknown sum is not sent again.
  ASSERT_TRUE(acc.Add("after", 1).ok());
  ASSERT_TRUE(acc.Flush().ok());
  EXPECT_EQ(server.Value("after"), 1);
  EXPECT_EQ(server.Value("crash/a"), 3);  // the fake applied it once
  EXPECT_EQ(acc.stats().unknown_increments, 1u);
  EXPECT_EQ(acc.stats().acked_increments, 1u);
}

TEST(AccumulatorTest, MemoryIsBoundedWhileNoServerAnswersAndSendingResumesAfter) {
  const int port = FreePort();
  std::unique_ptr<FakeStreamServer> server;  // outlives the Accumulator's stream
  Reports reports;
  AccumulatorOptions options = Options(&reports, absl::Milliseconds(300));
  options.max_memory_bytes = 10 * (8 + Accumulator::kEntryOverheadBytes);
  Accumulator acc(absl::StrCat("127.0.0.1:", port), options);
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    const absl::Status s = acc.Add(absl::StrCat("key-", 100 + i, "x"), 1);  // 8 bytes
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
      ++refused;
    }
  }
  EXPECT_EQ(refused, 10);
  // Known keys keep summing in place.
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(acc.Add("key-100x", 1).ok());
  // Flush answers with the first error since the last one (a dropped add),
  // then with why nothing could be sent.
  EXPECT_EQ(acc.Flush(absl::Seconds(30)).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(acc.Flush(absl::Seconds(30)).code(), absl::StatusCode::kUnavailable);
  AccumulatorStats s = acc.stats();
  EXPECT_EQ(s.dropped_adds, 10u);
  EXPECT_EQ(s.keys, 10u);
  EXPECT_LE(s.memory_bytes, options.max_memory_bytes);
  EXPECT_EQ(reports.Of(AccumulatorError::kMemoryFull).size(), 10u);

  server = std::make_unique<FakeStreamServer>(port);  // the server comes back
  // Until the stream has reopened, Flush fails at once (UNAVAILABLE): poll.
  absl::Status flushed = acc.Flush(absl::Seconds(5));
  for (const absl::Time deadline = MonotonicNow() + absl::Seconds(60);
       !flushed.ok() && MonotonicNow() < deadline; flushed = acc.Flush(absl::Seconds(5))) {
    EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable) << flushed;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ(server->Value("key-100x"), 1001);
  for (int i = 1; i < 10; ++i) EXPECT_EQ(server->Value(absl::StrCat("key-", 100 + i, "x")), 1);
  EXPECT_EQ(server->Value("key-110x"), 0);  // dropped, and said so
}

TEST(AccumulatorTest, TheDestructorReportsWhatItCouldNotSend) {
  Reports reports;
  {
    AccumulatorOptions options = Options(&reports, absl::Milliseconds(200));
    Accumulator acc(absl::StrCat("127.0.0.1:", FreePort()), options);
    ASSERT_TRUE(acc.Add("a", 1).ok());
    ASSERT_TRUE(acc.Add("b", -2).ok());
  }
  std::vector<std::pair<std::string, int64_t>> abandoned;
  for (const AccumulatorError& e : reports.Of(AccumulatorError::kAbandoned)) {
    abandoned.insert(abandoned.end(), e.increments.begin(), e.increments.end());
  }
  EXPECT_THAT(abandoned, UnorderedElementsAre(Pair("a", 1), Pair("b", -2)));
}

}  // namespace
}  // namespace countersd::testing
