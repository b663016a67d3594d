// IncrementStream against FakeStreamServer (no daemon): answers in order
// with their values, a failed message that does not end the stream, breaks
// that leave exactly the unanswered sequences unknown and reconnect (or,
// exactly once, resend them until their deadline), an answer that never
// comes, no server at all, the bearer token, Close.
#include "client/increment_stream.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/monotonic_time.h"
#include "tests/client/fake_stream_server.h"

namespace countersd::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Every result the callback saw, in the order it saw them.
struct Seen {
  uint64_t sequence;
  StreamOutcome outcome;
  absl::StatusCode code;
  std::vector<int64_t> values;
};

class Recorder {
 public:
  IncrementStream::ResultCallback Callback() {
    return [this](const StreamResult& r) {
      std::lock_guard lock(mu_);
      seen_.push_back({r.sequence, r.outcome, r.status.code(),
                       std::vector<int64_t>(r.values.begin(), r.values.end())});
    };
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

IncrementStreamOptions Options(absl::Duration timeout = absl::Seconds(30)) {
  IncrementStreamOptions o;
  o.client.timeout = timeout;
  o.client.initial_backoff = absl::Milliseconds(10);
  o.client.max_backoff = absl::Milliseconds(100);
  o.window = 4;
  return o;
}

TEST(IncrementStreamTest, AnswersArriveInOrderWithTheirValues) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStream stream(Channel(server.address()), Options(), rec.Callback());
  for (int i = 0; i < 50; ++i) {  // more than the window: Send waits for room
    const IncrementOp ops[] = {{"a", 1}, {"b", 10}, {"a", 1}};
    absl::StatusOr<uint64_t> seq = stream.Send(ops);
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, static_cast<uint64_t>(i + 1));
  }
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(seen[i].sequence, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(seen[i].outcome, StreamOutcome::kAnswered);
    EXPECT_EQ(seen[i].code, absl::StatusCode::kOk);
    EXPECT_THAT(seen[i].values, ElementsAre(2 * i + 1, 10 * (i + 1), 2 * i + 2));
  }
  EXPECT_EQ(server.Value("a"), 100);
  EXPECT_EQ(stream.stats().answered, 50u);
  EXPECT_EQ(stream.stats().streams, 1u);
}

TEST(IncrementStreamTest, NewRequestHandsBackAWrittenMessageEmptied) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStream stream(Channel(server.address()), Options(), rec.Callback());
  const IncrementOp three[] = {{"x", 1}, {"y", 1}, {"z", 1}};
  ASSERT_TRUE(stream.Send(three).ok());
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  counters::v1::IncrementStreamRequest reused = stream.NewRequest();
  EXPECT_EQ(reused.increments_size(), 0);
  EXPECT_EQ(reused.sequence(), 0u);
  counters::v1::IncrementRequest* inc = reused.add_increments();
  inc->set_key("x");
  inc->set_delta(5);
  ASSERT_TRUE(stream.Send(std::move(reused)).ok());
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_THAT(seen[1].values, ElementsAre(6));  // nothing of the first message left in it
  EXPECT_EQ(server.Value("y"), 1);
}

TEST(IncrementStreamTest, AFailedMessageChangesNothingAndTheStreamGoesOn) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStream stream(Channel(server.address()), Options(), rec.Callback());
  const IncrementOp bad[] = {{"refuse/x", 5}, {"k", 1}};
  const IncrementOp good[] = {{"k", 1}};
  ASSERT_TRUE(stream.Send(good).ok());
  ASSERT_TRUE(stream.Send(bad).ok());
  ASSERT_TRUE(stream.Send(good).ok());
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].code, absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(seen[1].values.empty());
  EXPECT_THAT(seen[2].values, ElementsAre(2));
  EXPECT_EQ(server.Value("k"), 2);
  EXPECT_EQ(stream.stats().streams, 1u);
  EXPECT_EQ(stream.stats().breaks, 0u);
}

TEST(IncrementStreamTest, ABreakLeavesTheUnansweredUnknownAndReconnects) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStream stream(Channel(server.address()), Options(), rec.Callback());
  const IncrementOp before[] = {{"n", 1}};
  const IncrementOp crash[] = {{"crash/1", 1}, {"n", 100}};
  ASSERT_TRUE(stream.Send(before).ok());  // 1
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  ASSERT_TRUE(stream.Send(crash).ok());  // 2: applied, never answered
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  // Send waits for the new stream.
  absl::StatusOr<uint64_t> after = stream.Send(before);  // 3
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].outcome, StreamOutcome::kAnswered);
  EXPECT_EQ(seen[1].sequence, 2u);
  EXPECT_EQ(seen[1].outcome, StreamOutcome::kUnknown);
  EXPECT_EQ(seen[1].code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(seen[2].sequence, 3u);
  EXPECT_EQ(seen[2].outcome, StreamOutcome::kAnswered);
  EXPECT_THAT(seen[2].values, ElementsAre(102));  // the unknown one was applied, not resent
  EXPECT_EQ(server.Value("n"), 102);
  const IncrementStream::Stats stats = stream.stats();
  EXPECT_EQ(stats.unknown, 1u);
  EXPECT_EQ(stats.breaks, 1u);
  EXPECT_EQ(stats.streams, 2u);
  EXPECT_EQ(server.streams(), 2);
}

// exactly_once: the message a break left unanswered is written again on the
// next stream under its session and sequence; the server answers it with
// its first answer and applies nothing twice.
TEST(IncrementStreamTest, ExactlyOnceResendsWhatABreakLeftUnansweredAndNothingIsAppliedTwice) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStreamOptions options = Options();
  options.exactly_once = true;
  IncrementStream stream(Channel(server.address()), options, rec.Callback());
  const IncrementOp before[] = {{"n", 1}};
  const IncrementOp crash[] = {{"crash/1", 1}, {"n", 100}};
  ASSERT_TRUE(stream.Send(before).ok());  // 1
  ASSERT_TRUE(stream.Send(crash).ok());   // 2: applied, the stream broken before its answer
  ASSERT_TRUE(stream.Send(before).ok());  // 3: behind it, written on whichever stream
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 3u);
  for (const Seen& r : seen) {
    EXPECT_EQ(r.outcome, StreamOutcome::kAnswered) << r.sequence;
    EXPECT_EQ(r.code, absl::StatusCode::kOk) << r.sequence;
  }
  EXPECT_EQ(seen[1].sequence, 2u);
  EXPECT_THAT(seen[1].values, ElementsAre(1, 101));  // its first answer
  EXPECT_THAT(seen[2].values, ElementsAre(102));
  EXPECT_EQ(server.Value("n"), 102);
  EXPECT_EQ(server.Value("crash/1"), 1);
  EXPECT_EQ(server.duplicates(), 1u);
  const IncrementStream::Stats stats = stream.stats();
  EXPECT_EQ(stats.unknown, 0u);
  EXPECT_EQ(stats.answered, 3u);
  EXPECT_GE(stats.breaks, 1u);
  EXPECT_GE(stats.streams, 2u);
}

// exactly_once: a message the server never answers (each stream it is
// written on ends before it is applied) is resent until ClientOptions::
// timeout after its first send, then resolved unknown; the stream goes on.
TEST(IncrementStreamTest, ExactlyOnceGivesUpOnAMessageAtItsDeadlineAsUnknown) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStreamOptions options = Options(absl::Seconds(1));
  options.exactly_once = true;
  IncrementStream stream(Channel(server.address()), options, rec.Callback());
  const IncrementOp drop[] = {{"drop/1", 1}};
  const IncrementOp one[] = {{"n", 1}};
  ASSERT_TRUE(stream.Send(drop).ok());
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  ASSERT_TRUE(stream.Send(one).ok());
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].outcome, StreamOutcome::kUnknown);
  EXPECT_EQ(seen[0].code, absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(seen[1].outcome, StreamOutcome::kAnswered);
  EXPECT_EQ(server.Value("n"), 1);
  EXPECT_GE(server.streams(), 3) << "the dropped message was not resent";
  EXPECT_EQ(stream.stats().unknown, 1u);
}

TEST(IncrementStreamTest, EveryMessageInFlightAtABreakIsResolvedOnceAndInOrder) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStreamOptions options = Options();
  options.window = 8;
  IncrementStream stream(Channel(server.address()), options, rec.Callback());
  // The held message keeps the ones behind it unanswered; the drop ends the
  // stream while they are all in flight.
  const IncrementOp hold[] = {{"hold/1", 1}};
  const IncrementOp one[] = {{"m", 1}};
  const IncrementOp drop[] = {{"drop/1", 1}};
  ASSERT_TRUE(stream.Send(hold).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(stream.Send(one).ok());
  ASSERT_TRUE(stream.Send(drop).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(stream.Send(one).ok());
  server.Release();
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 7u);
  uint64_t answered_m = 0, unresolved_m = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].sequence, i + 1);
    if (seen[i].outcome != StreamOutcome::kAnswered) {
      // Once one is unresolved, every later one is too (answers come in order).
      for (size_t j = i; j < seen.size(); ++j) EXPECT_NE(seen[j].outcome, StreamOutcome::kAnswered);
    }
    if (i == 0 || i == 4) continue;
    (seen[i].outcome == StreamOutcome::kAnswered ? answered_m : unresolved_m) += 1;
  }
  EXPECT_EQ(seen[4].outcome == StreamOutcome::kAnswered, false);  // the dropped one
  // Exactly the answered ones were applied (the fake drops before applying).
  EXPECT_EQ(server.Value("m"), static_cast<int64_t>(answered_m));
  EXPECT_EQ(answered_m + unresolved_m, 5u);
  const IncrementStream::Stats stats = stream.stats();
  EXPECT_EQ(stats.unknown + stats.not_sent, 7 - stats.answered);
}

// Polls (with a deadline) until the stream is open, so that a short
// timeout under test is not spent connecting on a loaded machine.
void WaitUntilConnected(const IncrementStream& stream) {
  for (const absl::Time deadline = MonotonicNow() + absl::Seconds(60);
       !stream.connected() && MonotonicNow() < deadline;) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(stream.connected());
}

TEST(IncrementStreamTest, AnAnswerThatNeverComesCancelsTheStreamAfterTheTimeout) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStream stream(Channel(server.address()), Options(absl::Milliseconds(500)),
                         rec.Callback());
  WaitUntilConnected(stream);
  const IncrementOp hold[] = {{"hold/1", 1}};
  ASSERT_TRUE(stream.Send(hold).ok());
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].outcome, StreamOutcome::kUnknown);
  EXPECT_EQ(seen[0].code, absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server.Value("hold/1"), 1);  // it was applied: unknown, rightly
}

TEST(IncrementStreamTest, WithNoServerSendFailsAfterTheTimeoutHavingSentNothing) {
  int port;
  {
    FakeStreamServer gone;  // a port nobody listens on any more
    port = gone.port();
  }
  Recorder rec;
  IncrementStream stream(Channel(absl::StrCat("127.0.0.1:", port)),
                         Options(absl::Milliseconds(300)), rec.Callback());
  const IncrementOp one[] = {{"k", 1}};
  absl::StatusOr<uint64_t> seq = stream.Send(one);
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kUnavailable) << seq.status();
  EXPECT_THAT(seq.status().message(), HasSubstr("no stream open"));
  // Past the timeout it fails at once.
  EXPECT_EQ(stream.Send(one).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(stream.stats().sent, 0u);
  EXPECT_TRUE(rec.seen().empty());
}

TEST(IncrementStreamTest, SendsTheBearerToken) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStreamOptions options = Options();
  options.client.bearer_token = "s3cret";
  IncrementStream stream(Channel(server.address()), options, rec.Callback());
  const IncrementOp one[] = {{"k", 1}};
  ASSERT_TRUE(stream.Send(one).ok());
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  EXPECT_EQ(server.last_authorization(), "Bearer s3cret");
}

TEST(IncrementStreamTest, DurableMarksEveryMessageItSends) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStreamOptions options = Options();
  options.durable = true;
  IncrementStream stream(Channel(server.address()), options, rec.Callback());
  const IncrementOp one[] = {{"k", 1}};
  ASSERT_TRUE(stream.Send(one).ok());
  ASSERT_TRUE(stream.Send(stream.NewRequest()).ok());  // a message built by the caller too
  ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  EXPECT_EQ(server.durable_messages(), 2u);
  EXPECT_EQ(server.plain_messages(), 0u);
  IncrementStream plain(Channel(server.address()), Options(), rec.Callback());
  ASSERT_TRUE(plain.Send(one).ok());
  ASSERT_TRUE(plain.WaitForResults(absl::Seconds(30)).ok());
  EXPECT_EQ(server.plain_messages(), 1u);
}

TEST(IncrementStreamTest, CloseWaitsForTheAnswersDueThenRefusesSends) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStream stream(Channel(server.address()), Options(), rec.Callback());
  const IncrementOp one[] = {{"k", 1}};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream.Send(one).ok());
  stream.Close(absl::Seconds(30));
  EXPECT_EQ(rec.seen().size(), 10u);
  EXPECT_EQ(stream.stats().answered, 10u);
  EXPECT_EQ(server.Value("k"), 10);
  EXPECT_EQ(stream.Send(one).status().code(), absl::StatusCode::kFailedPrecondition);
  stream.Close(absl::Seconds(30));  // idempotent
}

TEST(IncrementStreamTest, CloseCancelsAnswersStillDueAfterItsTimeoutAsUnknown) {
  FakeStreamServer server;
  Recorder rec;
  IncrementStream stream(Channel(server.address()), Options(), rec.Callback());
  const IncrementOp hold[] = {{"hold/1", 1}};
  ASSERT_TRUE(stream.Send(hold).ok());
  stream.Close(absl::Milliseconds(200));
  const std::vector<Seen> seen = rec.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].outcome, StreamOutcome::kUnknown);
}

}  // namespace
}  // namespace countersd::testing
