// IncrementStream against the real daemon over real gRPC (the generated
// sync stub, no client library): answers in order with their sequences,
// each message atomic, a failed message in the middle leaving the others
// applied, what is in flight bounded by the server, a drain ending open
// streams UNAVAILABLE, durable messages in the log when answered, and a
// handler SIGKILLed under stream load losing nothing acknowledged and
// applying nothing twice. (Raw bytes that do not
// parse: tests/interop/python_interop_test.py.)
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/shared/logged_adds.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;
using counters::v1::IncrementStreamRequest;
using counters::v1::IncrementStreamResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Increments = std::vector<std::pair<std::string, int64_t>>;

// One IncrementStream over the sync stub.
class RawStream {
 public:
  explicit RawStream(CounterService::Stub* stub, absl::Duration deadline = absl::Seconds(60)) {
    ctx_.set_deadline(GrpcDeadlineAfter(deadline));
    rw_ = stub->IncrementStream(&ctx_);
  }
  bool Send(uint64_t sequence, const Increments& increments, bool durable = false) {
    IncrementStreamRequest req;
    req.set_sequence(sequence);
    if (durable) req.mutable_options()->set_durable(true);
    for (const auto& [key, delta] : increments) {
      auto* inc = req.add_increments();
      inc->set_key(key);
      inc->set_delta(delta);
    }
    return rw_->Write(req);
  }
  std::optional<IncrementStreamResponse> Read() {
    IncrementStreamResponse resp;
    if (!rw_->Read(&resp)) return std::nullopt;
    return resp;
  }
  // Closes the sending side, reads what is left, and returns the stream's
  // status; the answers left into `rest`.
  grpc::Status Close(std::vector<IncrementStreamResponse>* rest = nullptr) {
    WritesDone();
    while (std::optional<IncrementStreamResponse> r = Read()) {
      if (rest != nullptr) rest->push_back(*r);
    }
    return Finish();
  }
  // The two halves of Close, for a stream whose answers another thread
  // reads: WritesDone, join that thread (its Read came back false), Finish.
  void WritesDone() { rw_->WritesDone(); }
  grpc::Status Finish() { return rw_->Finish(); }
  grpc::ClientContext& context() { return ctx_; }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<IncrementStreamRequest, IncrementStreamResponse>> rw_;
};

class IncrementStreamTest : public SharedDaemonTest {
 protected:
  static constexpr int kMaxBatch = 100;
  static void SetUpTestSuite() {
    DaemonOptions options;
    options.handlers = 2;
    options.extra_flags = {absl::StrCat("--max-batch=", kMaxBatch)};
    StartSharedDaemon(options);
  }
  void SetUp() override {
    SharedDaemonTest::SetUp();
    if (daemon_ != nullptr) stub_ = NewStub(daemon_->address());
  }
  std::unique_ptr<CounterService::Stub> stub_;
};

TEST_F(IncrementStreamTest, AnswersEveryMessageInOrderWithItsSequenceAndValues) {
  const std::string a = TestKey("a"), b = TestKey("b");
  RawStream stream(stub_.get());
  // All sent before any is read: more than the server holds unread
  // (kMaxUnsentAnswers), so its reading stops and resumes as this reads.
  constexpr int kMessages = 50;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(stream.Send(1000 + i, {{a, 1}, {b, 2}, {a, 1}}));
  }
  for (int i = 0; i < kMessages; ++i) {
    std::optional<IncrementStreamResponse> r = stream.Read();
    ASSERT_TRUE(r.has_value()) << "answer " << i;
    EXPECT_EQ(r->sequence(), 1000u + i);
    EXPECT_EQ(r->code(), 0) << r->message();
    // A key twice in one message: its increments in order.
    EXPECT_THAT(r->values(), ElementsAre(2 * i + 1, 2 * (i + 1), 2 * i + 2));
  }
  grpc::Status closed = stream.Close();
  EXPECT_TRUE(closed.ok()) << closed.error_message();
  EXPECT_EQ(CounterValue(stub_.get(), a), 2 * kMessages);
  EXPECT_EQ(CounterValue(stub_.get(), b), 2 * kMessages);
}

TEST_F(IncrementStreamTest, AFailedMessageChangesNothingAndTheStreamGoesOn) {
  const std::string k = TestKey("k"), big = TestKey("big");
  {
    grpc::ClientContext ctx;
    counters::v1::SetRequest req;
    req.set_key(big);
    req.set_value(std::numeric_limits<int64_t>::max());
    counters::v1::SetResponse resp;
    ASSERT_TRUE(stub_->Set(&ctx, req, &resp).ok());
  }
  Increments too_many;
  for (int i = 0; i <= kMaxBatch; ++i) too_many.push_back({k, 1});
  RawStream stream(stub_.get());
  ASSERT_TRUE(stream.Send(1, {{k, 5}}));
  ASSERT_TRUE(stream.Send(2, {{k, 1}, {big, 1}}));  // overflows: none of it applies
  ASSERT_TRUE(stream.Send(3, {{k, 1}, {"", 1}}));   // a bad key
  ASSERT_TRUE(stream.Send(4, {}));                  // nothing to apply
  ASSERT_TRUE(stream.Send(5, too_many));            // over --max-batch
  ASSERT_TRUE(stream.Send(6, {{k, 1}}));
  std::vector<IncrementStreamResponse> got;
  grpc::Status closed = stream.Close(&got);
  ASSERT_TRUE(closed.ok()) << closed.error_message();
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].sequence(), i + 1);
  EXPECT_EQ(got[0].code(), 0);
  EXPECT_THAT(got[0].values(), ElementsAre(5));
  EXPECT_EQ(got[1].code(), static_cast<int>(grpc::StatusCode::OUT_OF_RANGE)) << got[1].message();
  EXPECT_THAT(got[1].values(), ElementsAre());
  EXPECT_EQ(got[2].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(got[2].message(), HasSubstr("increments[1]: key must not be empty"));
  EXPECT_EQ(got[3].code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(got[3].message(), HasSubstr("increments is empty"));
  EXPECT_EQ(got[4].code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_THAT(got[4].message(), HasSubstr("--max-batch=100"));
  EXPECT_EQ(got[5].code(), 0) << got[5].message();
  EXPECT_THAT(got[5].values(), ElementsAre(6));  // 5, then only message 6's
  EXPECT_EQ(CounterValue(stub_.get(), k), 6);
  EXPECT_EQ(CounterValue(stub_.get(), big), std::numeric_limits<int64_t>::max());
}

// Many streams at once on one connection, each its own key: every answer
// comes, and the totals are exact.
TEST_F(IncrementStreamTest, ConcurrentStreamsOnOneConnectionAreExact) {
  constexpr int kStreams = 16, kMessages = 200, kPerMessage = 10;
  std::vector<std::thread> threads;
  std::vector<int> answered(kStreams, 0);
  for (int s = 0; s < kStreams; ++s) {
    threads.emplace_back([&, s] {
      const std::string key = TestKey(absl::StrCat("s", s));
      RawStream stream(stub_.get());
      std::thread reader([&] {
        while (std::optional<IncrementStreamResponse> r = stream.Read()) {
          if (r->code() == 0) ++answered[s];
        }
      });
      for (int i = 0; i < kMessages; ++i) {
        if (!stream.Send(i, Increments(kPerMessage, {key, 1}))) break;
      }
      stream.WritesDone();
      reader.join();  // its Read comes back false once the server has finished
      grpc::Status closed = stream.Finish();
      EXPECT_TRUE(closed.ok()) << closed.error_message();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int s = 0; s < kStreams; ++s) {
    EXPECT_EQ(answered[s], kMessages) << "stream " << s;
    EXPECT_EQ(CounterValue(stub_.get(), TestKey(absl::StrCat("s", s))), kMessages * kPerMessage);
  }
}

// Its own daemon: it is stopped.
TEST(IncrementStreamDrainTest, AnOpenStreamEndsUnavailableWhenTheDaemonStops) {
  DaemonOptions options;
  options.handlers = 1;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  RawStream stream(stub.get());
  ASSERT_TRUE(stream.Send(7, {{"drain/k", 1}}));
  std::optional<IncrementStreamResponse> first = stream.Read();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->code(), 0);
  // The stream is open and idle: the drain must end it, not wait for it.
  absl::StatusOr<int> exited = (*daemon)->Terminate(absl::Seconds(60));
  ASSERT_TRUE(exited.ok()) << exited.status();
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0) << (*daemon)->log();
  EXPECT_FALSE(stream.Read().has_value());
  grpc::Status ended = stream.Close();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  EXPECT_THAT(ended.error_message(), HasSubstr("shutting down"));
  EXPECT_EQ((*daemon)->log().find("increment streams still open are cut"), std::string::npos);
}

// Durable messages: each answered only once its record is in the log on
// disk; the plain messages between them answered in order, not logged.
TEST(IncrementStreamDurableTest, ADurableMessageIsInTheLogWhenItsAnswerArrives) {
  DaemonOptions options;
  options.handlers = 1;
  // No periodic snapshot: one would cover the log and its segments would go.
  options.snapshot_interval = "1h";
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  RawStream stream(stub.get());
  constexpr uint64_t kMessages = 30;
  for (uint64_t q = 1; q <= kMessages; ++q) {
    const bool durable = q % 3 != 0;
    ASSERT_TRUE(stream.Send(q, {{durable ? "durable/d" : "durable/p", 2}}, durable));
    // Two sent before the first is read: the second may share its sync.
    if (q % 2 == 1) continue;
    for (uint64_t a = q - 1; a <= q; ++a) {
      std::optional<IncrementStreamResponse> r = stream.Read();
      ASSERT_TRUE(r.has_value()) << "answer " << a;
      EXPECT_EQ(r->sequence(), a);
      ASSERT_EQ(r->code(), 0) << r->message();
      if (a % 3 == 0) continue;
      absl::StatusOr<std::map<std::string, int64_t>> logged = LoggedAdds((*daemon)->data_dir());
      ASSERT_TRUE(logged.ok()) << logged.status();
      EXPECT_EQ(logged->count("durable/p"), 0u) << "a plain message was logged";
      EXPECT_GE((*logged)["durable/d"], r->values(0)) << "answered before its record was synced";
    }
  }
  grpc::Status closed = stream.Close();
  EXPECT_TRUE(closed.ok()) << closed.error_message();
  EXPECT_EQ(CounterValue(stub.get(), "durable/d"), 2 * 20);
  EXPECT_EQ(CounterValue(stub.get(), "durable/p"), 2 * 10);
}

// A handler SIGKILLed while streams run on it: what was acknowledged is
// there, and nothing is applied twice (a stream never resends: the value is
// at most what was sent).
TEST(IncrementStreamCrashTest, AHandlerKilledUnderStreamsLosesNothingAcknowledged) {
  DaemonOptions options;
  options.handlers = 2;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  constexpr int kStreams = 8, kPerMessage = 10;
  std::vector<int64_t> acked(kStreams, 0), sent(kStreams, 0);
  std::vector<pid_t> served_by(kStreams, 0);
  std::vector<std::thread> threads;
  std::atomic<int> running{0}, broken{0};
  std::atomic<bool> stop{false};
  // Not vector<bool>: its flags share words, so the threads' writes race.
  std::vector<std::atomic<bool>> broke(kStreams);
  for (int s = 0; s < kStreams; ++s) {
    threads.emplace_back([&, s] {
      auto stub = NewStubOnOwnConnection((*daemon)->address());
      {  // which handler this connection reached
        grpc::ClientContext ctx;
        ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
        counters::v1::GetStatsResponse stats;
        if (stub->GetStats(&ctx, {}, &stats).ok()) served_by[s] = stats.served_by_pid();
      }
      const std::string key = absl::StrCat("crash/s", s);
      RawStream stream(stub.get());
      std::thread reader([&] {
        while (std::optional<IncrementStreamResponse> r = stream.Read()) {
          if (r->code() == 0) acked[s] += kPerMessage;
          if (acked[s] == 50 * kPerMessage) running.fetch_add(1);
        }
      });
      // Until the kill has broken this stream, or the test stops it.
      for (uint64_t i = 0; !stop.load(); ++i) {
        if (!stream.Send(i, Increments(kPerMessage, {key, 1}))) {
          broke[s] = true;
          broken.fetch_add(1);
          break;
        }
        sent[s] += kPerMessage;
      }
      stream.WritesDone();
      reader.join();
      stream.Finish();
    });
  }
  // Once every stream has had answers, kill the handler of stream 0.
  absl::Time deadline = MonotonicNow() + absl::Seconds(60);
  while (running.load() < kStreams && MonotonicNow() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // polling a condition with a deadline
  }
  ASSERT_EQ(running.load(), kStreams) << "not every stream was answered within 60 s";
  const pid_t victim = served_by[0];
  ASSERT_GT(victim, 0);
  const int on_victim = static_cast<int>(std::count(served_by.begin(), served_by.end(), victim));
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  deadline = MonotonicNow() + absl::Seconds(60);
  while (broken.load() < on_victim && MonotonicNow() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // polling a condition with a deadline
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  auto stub = NewStub((*daemon)->address());
  for (int s = 0; s < kStreams; ++s) {
    const int64_t value = CounterValue(stub.get(), absl::StrCat("crash/s", s));
    EXPECT_GE(value, acked[s]) << "stream " << s << " lost acknowledged increments";
    EXPECT_LE(value, sent[s]) << "stream " << s << " applied more than it sent";
    if (served_by[s] == victim) {
      EXPECT_TRUE(broke[s]) << "stream " << s << " on the killed handler did not break";
    } else {  // the other handler's streams went on, every answer read
      EXPECT_FALSE(broke[s]) << "stream " << s;
      EXPECT_EQ(value, sent[s]) << "stream " << s << " on the other handler";
      EXPECT_EQ(acked[s], sent[s]) << "stream " << s << " on the other handler";
    }
  }
}

}  // namespace
}  // namespace countersd::testing
