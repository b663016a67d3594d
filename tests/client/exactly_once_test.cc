// Exactly-once writes (client.h, "Mutations"; client/write_session.h): the
// session and sequence every write carries, the retries that resend them,
// a new session when the daemon forgot the old one, and the window that
// bounds the writes in flight. Driven through the generated gMock stub,
// which plays the daemon: each EXPECT_CALL's action is one attempt, run on
// the calling thread. Against the real daemon: exactly_once_e2e_test.cc.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "client/client.h"
#include "client/write_session.h"
#include "gmock/gmock.h"
#include "tests/client/mock_client.h"
#include "gtest/gtest.h"
#include "shared/limits.h"
#include "shared/monotonic_time.h"
#include "shared/session_refusal.h"

namespace countersd {
namespace {

namespace v1 = ::counters::v1;
using ::testing::_;
using ::testing::HasSubstr;
using ::testing::Invoke;


// What one attempt of a write carried.
struct Sent {
  std::string session_id;
  uint64_t sequence = 0;
  bool has_options = false;
};
Sent SentOf(const v1::WriteOptions& o, bool has) { return Sent{o.session_id(), o.sequence(), has}; }

grpc::Status GrpcOf(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// An Increment attempt the fake answers with `status` (value 7 if OK),
// recording what it carried into `sent`.
auto IncrementAnswer(std::vector<Sent>& sent, grpc::Status status) {
  return Invoke([&sent, status](grpc::ClientContext*, const v1::IncrementRequest& req,
                                v1::IncrementResponse* resp) {
    sent.push_back(SentOf(req.options(), req.has_options()));
    if (status.ok()) resp->set_value(7);
    return status;
  });
}

TEST(ExactlyOnceTest, EveryRetryOfAWriteResendsItsSessionAndSequence) {
  Fixture f;
  std::vector<Sent> sent;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillOnce(IncrementAnswer(sent, kUnavailable))
      .WillOnce(IncrementAnswer(sent, kUnavailable))
      .WillOnce(IncrementAnswer(sent, grpc::Status::OK));
  absl::StatusOr<int64_t> v = f.client->Increment("k", 5);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 7);  // the answer of the attempt that got through
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_TRUE(sent[0].has_options);
  EXPECT_EQ(sent[0].session_id.size(), kSessionIdBytes);
  EXPECT_EQ(sent[0].sequence, 1u);
  for (const Sent& s : sent) {
    EXPECT_EQ(s.session_id, sent[0].session_id);
    EXPECT_EQ(s.sequence, 1u);
  }
}

TEST(ExactlyOnceTest, EachWriteTakesTheNextSequenceOfOneSession) {
  Fixture f;
  std::vector<Sent> sent;
  EXPECT_CALL(*f.stub, Increment(_, _, _)).WillOnce(IncrementAnswer(sent, grpc::Status::OK));
  EXPECT_CALL(*f.stub, IncrementBatch(_, _, _))
      .WillOnce(Invoke([&](grpc::ClientContext*, const v1::IncrementBatchRequest& req,
                           v1::IncrementBatchResponse* resp) {
        sent.push_back(SentOf(req.options(), req.has_options()));
        for (const v1::IncrementRequest& inc : req.increments()) {
          EXPECT_FALSE(inc.has_options());  // the batch carries them, its increments none
          resp->add_values(inc.delta());
        }
        return grpc::Status::OK;
      }));
  EXPECT_CALL(*f.stub, Set(_, _, _))
      .WillOnce(Invoke([&](grpc::ClientContext*, const v1::SetRequest& req, v1::SetResponse*) {
        sent.push_back(SentOf(req.options(), req.has_options()));
        return grpc::Status::OK;
      }));
  EXPECT_CALL(*f.stub, CompareAndSet(_, _, _))
      .WillOnce(Invoke([&](grpc::ClientContext*, const v1::CompareAndSetRequest& req,
                           v1::CompareAndSetResponse*) {
        sent.push_back(SentOf(req.options(), req.has_options()));
        return grpc::Status::OK;
      }));
  EXPECT_CALL(*f.stub, Delete(_, _, _))
      .WillOnce(
          Invoke([&](grpc::ClientContext*, const v1::DeleteRequest& req, v1::DeleteResponse*) {
            sent.push_back(SentOf(req.options(), req.has_options()));
            return grpc::Status::OK;
          }));
  // Reads carry nothing of the session and take no sequence.
  EXPECT_CALL(*f.stub, Get(_, _, _)).WillOnce(Invoke([](grpc::ClientContext*, auto&, auto*) {
    return grpc::Status::OK;
  }));
  ASSERT_TRUE(f.client->Increment("a").ok());
  ASSERT_TRUE(f.client->Get("a").ok());
  const IncrementOp ops[] = {{"a", 1}, {"b", 2}};
  ASSERT_TRUE(f.client->IncrementBatch(ops).ok());
  ASSERT_TRUE(f.client->Set("a", 3).ok());
  ASSERT_TRUE(f.client->CompareAndSet("a", 3, 4).ok());
  ASSERT_TRUE(f.client->Delete("a").ok());
  ASSERT_EQ(sent.size(), 5u);
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_TRUE(sent[i].has_options) << i;
    EXPECT_EQ(sent[i].session_id, sent[0].session_id) << i;
    EXPECT_EQ(sent[i].sequence, i + 1) << i;
  }
}

TEST(ExactlyOnceTest, TwoClientsHaveTwoSessions) {
  Fixture a, b;
  std::vector<Sent> sent;
  EXPECT_CALL(*a.stub, Increment(_, _, _)).WillOnce(IncrementAnswer(sent, grpc::Status::OK));
  EXPECT_CALL(*b.stub, Increment(_, _, _)).WillOnce(IncrementAnswer(sent, grpc::Status::OK));
  ASSERT_TRUE(a.client->Increment("k").ok());
  ASSERT_TRUE(b.client->Increment("k").ok());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(sent[0].session_id, sent[1].session_id);
  EXPECT_EQ(sent[0].sequence, 1u);
  EXPECT_EQ(sent[1].sequence, 1u);
}

TEST(ExactlyOnceTest, ADaemonRefusalIsReturnedAtOnceAsItIs) {
  Fixture f;
  std::vector<Sent> sent;
  const grpc::Status overflow(grpc::StatusCode::OUT_OF_RANGE, "would overflow");
  EXPECT_CALL(*f.stub, Increment(_, _, _)).Times(1).WillOnce(IncrementAnswer(sent, overflow));
  absl::StatusOr<int64_t> v = f.client->Increment("k", 5);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(v.status().message(), "would overflow");  // not applied: no "outcome unknown"
}

TEST(ExactlyOnceTest, AnAttemptHasItsOwnDeadlineAndALostReplyIsRetried) {
  ClientOptions o = FastRetries();
  o.timeout = absl::Seconds(30);
  o.attempt_timeout = absl::Seconds(2);
  Fixture f(o);
  std::vector<Sent> sent;
  std::vector<std::chrono::system_clock::time_point> deadlines;
  const auto before = std::chrono::system_clock::now();
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .Times(2)
      .WillRepeatedly(Invoke([&](grpc::ClientContext* ctx, const v1::IncrementRequest& req,
                                 v1::IncrementResponse* resp) {
        sent.push_back(SentOf(req.options(), req.has_options()));
        deadlines.push_back(ctx->deadline());
        if (sent.size() == 1) {
          // The reply that never came: the attempt's deadline passed.
          return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded");
        }
        resp->set_value(11);
        return grpc::Status::OK;
      }));
  absl::StatusOr<int64_t> v = f.client->Increment("k", 5);
  const auto after = std::chrono::system_clock::now();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 11);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].session_id, sent[0].session_id);
  EXPECT_EQ(sent[1].sequence, sent[0].sequence);
  // Each attempt's deadline is 2 s after it started, not the call's 30 s.
  for (const auto& d : deadlines) {
    EXPECT_GE(d, before + std::chrono::seconds(2) - std::chrono::milliseconds(1));
    EXPECT_LE(d, after + std::chrono::seconds(2) + std::chrono::milliseconds(1));
  }
}

TEST(ExactlyOnceTest, ADeadlineExceededAtTheCallsDeadlineEndsTheCallWithOutcomeUnknown) {
  ClientOptions o = FastRetries();
  o.timeout = absl::Seconds(3);
  o.attempt_timeout = absl::Seconds(10);  // longer than the call's: the call's deadline applies
  Fixture f(o);
  std::vector<Sent> sent;
  const grpc::Status expired(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded");
  EXPECT_CALL(*f.stub, Increment(_, _, _)).Times(1).WillOnce(IncrementAnswer(sent, expired));
  absl::StatusOr<int64_t> v = f.client->Increment("k");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(v.status().message(), HasSubstr("Deadline Exceeded"));
  EXPECT_THAT(v.status().message(), HasSubstr("outcome unknown"));
  EXPECT_THAT(v.status().message(), HasSubstr("sequence 1 "));
}

TEST(ExactlyOnceTest, NoAttemptStartsAfterTheCallsDeadline) {
  ClientOptions o = FastRetries();
  o.timeout = absl::Milliseconds(300);
  o.max_attempts = 1000;  // the deadline, not the count, ends it
  o.attempt_timeout = absl::ZeroDuration();
  Fixture f(o);
  const absl::Time call_deadline = MonotonicNow() + o.timeout;
  std::vector<absl::Time> starts;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillRepeatedly(
          Invoke([&](grpc::ClientContext*, const v1::IncrementRequest&, v1::IncrementResponse*) {
            starts.push_back(MonotonicNow());
            // A daemon slow to refuse: the attempts use up the deadline.
            absl::SleepFor(absl::Milliseconds(20));
            return kUnavailable;
          }));
  absl::StatusOr<int64_t> v = f.client->Increment("k");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(v.status().message(), HasSubstr("outcome unknown"));
  ASSERT_GE(starts.size(), 2u);  // it did retry
  for (const absl::Time t : starts) EXPECT_LT(t, call_deadline);
  // And it stopped: the calls' time is the deadline's, not 1000 attempts'.
  EXPECT_LT(MonotonicNow(), call_deadline + absl::Seconds(1));
}

TEST(ExactlyOnceTest, AnUnknownSessionOnAFirstAttemptStartsANewSessionAndResendsOnce) {
  Fixture f;
  std::vector<Sent> sent;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillOnce(IncrementAnswer(sent, grpc::Status::OK))
      .WillOnce(IncrementAnswer(sent, grpc::Status::OK))
      // The daemon forgot the session: sequence 3 cannot start one.
      .WillOnce(IncrementAnswer(sent, GrpcOf(UnknownSessionError(3))))
      .WillOnce(IncrementAnswer(sent, grpc::Status::OK))
      .WillOnce(IncrementAnswer(sent, grpc::Status::OK));
  ASSERT_TRUE(f.client->Increment("k").ok());
  ASSERT_TRUE(f.client->Increment("k").ok());
  absl::StatusOr<int64_t> v = f.client->Increment("k");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 7);
  ASSERT_TRUE(f.client->Increment("k").ok());  // the next write: the new session's
  ASSERT_EQ(sent.size(), 5u);
  EXPECT_EQ(sent[2].session_id, sent[0].session_id);
  EXPECT_EQ(sent[2].sequence, 3u);
  EXPECT_NE(sent[3].session_id, sent[0].session_id);  // new id,
  EXPECT_EQ(sent[3].session_id.size(), kSessionIdBytes);
  EXPECT_EQ(sent[3].sequence, 1u);  // sequences from 1
  EXPECT_EQ(sent[4].session_id, sent[3].session_id);
  EXPECT_EQ(sent[4].sequence, 2u);
}

TEST(ExactlyOnceTest, AnUnknownSessionOnARetryIsReturnedWithItsOutcomeUnknown) {
  Fixture f;
  std::vector<Sent> sent;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillOnce(IncrementAnswer(sent, kUnavailable))  // may have been applied
      .WillOnce(IncrementAnswer(sent, GrpcOf(UnknownSessionError(1))))
      .WillOnce(IncrementAnswer(sent, grpc::Status::OK));
  absl::StatusOr<int64_t> v = f.client->Increment("k");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(IsUnknownSessionError(v.status())) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("outcome unknown"));
  ASSERT_EQ(sent.size(), 2u);  // no resend under a new session
  // The session was not renewed: the next write is its sequence 2.
  ASSERT_TRUE(f.client->Increment("k").ok());
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[2].session_id, sent[0].session_id);
  EXPECT_EQ(sent[2].sequence, 2u);
}

TEST(ExactlyOnceTest, ASecondUnknownSessionAfterANewSessionIsReturned) {
  Fixture f;
  std::vector<Sent> sent;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .Times(2)
      .WillRepeatedly(IncrementAnswer(sent, GrpcOf(UnknownSessionError(1))));
  absl::StatusOr<int64_t> v = f.client->Increment("k");
  EXPECT_TRUE(IsUnknownSessionError(v.status())) << v.status();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(sent[1].session_id, sent[0].session_id);
}

TEST(ExactlyOnceTest, AForgottenSequenceOnARetryIsReturnedWithItsOutcomeUnknown) {
  Fixture f;
  std::vector<Sent> sent;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillOnce(IncrementAnswer(sent, kUnavailable))
      .WillOnce(IncrementAnswer(sent, GrpcOf(ForgottenSequenceError(1, 70))));
  absl::StatusOr<int64_t> v = f.client->Increment("k");
  EXPECT_TRUE(IsForgottenSequenceError(v.status())) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("outcome unknown"));
}

TEST(ExactlyOnceTest, AWriteTheDaemonCancelledIsRetried) {
  Fixture f;  // no Cancellation of the caller's: the daemon's shutdown cut it
  std::vector<Sent> sent;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillOnce(IncrementAnswer(sent, grpc::Status(grpc::StatusCode::CANCELLED, "CANCELLED")))
      .WillOnce(IncrementAnswer(sent, grpc::Status::OK));
  absl::StatusOr<int64_t> v = f.client->Increment("k");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].sequence, sent[0].sequence);
}

TEST(ExactlyOnceTest, CancelledInFlightIsOutcomeUnknown) {
  Fixture f;
  auto cancel = std::make_shared<Cancellation>();
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .Times(1)
      .WillOnce(
          Invoke([&](grpc::ClientContext*, const v1::IncrementRequest&, v1::IncrementResponse*) {
            cancel->Cancel();  // as another thread would, while the attempt is in flight
            return kUnavailable;
          }));
  absl::StatusOr<int64_t> v = f.client->Increment("k", 1, {.cancellation = cancel});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(v.status().message(), HasSubstr("outcome unknown"));
}

// The window (write_session.h, 3.), through the client: while sequence 1 is
// in flight, sequences 2 to 64 may go out, 65 may not. The fake's answer to
// sequence 1 makes those calls itself, on the same thread, so nothing
// depends on timing: the 65th waits for a place until its own deadline.
TEST(ExactlyOnceTest, NoWriteGoesOutMoreThan63SequencesPastTheOldestInFlight) {
  Fixture f;
  uint64_t highest_sent = 0;
  int answered = 0;
  absl::StatusOr<int64_t> past_the_window = 0;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillRepeatedly(Invoke(
          [&](grpc::ClientContext*, const v1::IncrementRequest& req, v1::IncrementResponse*) {
            highest_sent = std::max(highest_sent, req.options().sequence());
            if (req.options().sequence() == 1) {
              for (int i = 0; i < 63; ++i) EXPECT_TRUE(f.client->Increment("k").ok());
              EXPECT_EQ(highest_sent, 64u);
              past_the_window = f.client->Increment("k", 1, {.timeout = absl::Milliseconds(100)});
              EXPECT_EQ(highest_sent, 64u);  // the 65th was not sent
            }
            ++answered;
            return grpc::Status::OK;
          }));
  ASSERT_TRUE(f.client->Increment("k").ok());
  EXPECT_EQ(answered, 64);
  EXPECT_EQ(past_the_window.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(past_the_window.status().message(), HasSubstr("not sent"));
  // Once sequence 1 returned, the window moved; the one that gave up took
  // no sequence.
  ASSERT_TRUE(f.client->Increment("k").ok());
  EXPECT_EQ(highest_sent, 65u);
}

// The same bound from many threads: 100 writers, a fake that holds every
// attempt until the test releases them, once 64 are held and every writer
// has called. None beyond 64 is ever in flight. (The 100 ms the test then
// watches for a 65th is not synchronisation: a client without the window
// would have sent the other 36 at once; with it, nothing comes.)
TEST(ExactlyOnceTest, AtMost64WritesOfAClientAreInFlight) {
  Fixture f;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  int most = 0;
  int called = 0;
  bool released = false;
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillRepeatedly(
          Invoke([&](grpc::ClientContext*, const v1::IncrementRequest&, v1::IncrementResponse*) {
            std::unique_lock lock(mu);
            most = std::max(most, ++in_flight);
            cv.notify_all();
            cv.wait(lock, [&] { return released; });
            --in_flight;
            return grpc::Status::OK;
          }));
  constexpr int kWriters = 100;
  std::vector<std::thread> writers;
  std::atomic<int> ok{0};
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&] {
      {
        std::lock_guard lock(mu);
        ++called;
      }
      cv.notify_all();
      if (f.client->Increment("k").ok()) ok.fetch_add(1);
    });
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock,
            [&] { return called == kWriters && in_flight >= static_cast<int>(kSessionWindow); });
    EXPECT_FALSE(cv.wait_for(lock, std::chrono::milliseconds(100),
                             [&] { return in_flight > static_cast<int>(kSessionWindow); }));
    released = true;
  }
  cv.notify_all();
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(ok.load(), kWriters);
  EXPECT_EQ(most, static_cast<int>(kSessionWindow));
}

// WriteSession on its own.
TEST(WriteSessionTest, TheWindowSlidesFromTheOldestWriteInFlight) {
  WriteSession session;
  const absl::Time now = MonotonicNow();  // a deadline already passed: no waiting
  std::vector<WriteSession::Ticket> tickets;
  for (uint64_t i = 1; i <= kSessionWindow; ++i) {
    absl::StatusOr<WriteSession::Ticket> t = session.Begin(1, now, nullptr);
    ASSERT_TRUE(t.ok()) << i << ": " << t.status();
    EXPECT_EQ(t->sequence, i);
    tickets.push_back(*t);
  }
  EXPECT_EQ(session.in_flight(), kSessionWindow);
  EXPECT_EQ(session.Begin(1, now, nullptr).status().code(), absl::StatusCode::kDeadlineExceeded);
  // Every write but the oldest ends: 65 would still be 64 past it.
  for (size_t i = 1; i < tickets.size(); ++i) session.End(tickets[i]);
  EXPECT_EQ(session.in_flight(), 1u);
  EXPECT_EQ(session.Begin(1, now, nullptr).status().code(), absl::StatusCode::kDeadlineExceeded);
  session.End(tickets[0]);
  absl::StatusOr<WriteSession::Ticket> next = session.Begin(1, now, nullptr);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->sequence, kSessionWindow + 1);  // no sequence lost to the refusals
}

TEST(WriteSessionTest, TheResponseValuesInTheWindowFitHalfTheDaemonsRing) {
  WriteSession session;
  const absl::Time now = MonotonicNow();
  static_assert(WriteSession::kWindowResponseValues == kSessionResponseValues / 2);
  absl::StatusOr<WriteSession::Ticket> big = session.Begin(500, now, nullptr);
  ASSERT_TRUE(big.ok());
  absl::StatusOr<WriteSession::Ticket> rest =
      session.Begin(WriteSession::kWindowResponseValues - 500, now, nullptr);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(session.Begin(1, now, nullptr).status().code(), absl::StatusCode::kDeadlineExceeded);
  session.End(*rest);  // not the oldest: its values still count
  EXPECT_EQ(session.Begin(1, now, nullptr).status().code(), absl::StatusCode::kDeadlineExceeded);
  session.End(*big);
  EXPECT_TRUE(session.Begin(500, now, nullptr).ok());
}

TEST(WriteSessionTest, ABatchBiggerThanTheWindowsValuesGoesAlone) {
  WriteSession session;
  const absl::Time now = MonotonicNow();
  absl::StatusOr<WriteSession::Ticket> one = session.Begin(1, now, nullptr);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(session.Begin(1000, now, nullptr).status().code(), absl::StatusCode::kDeadlineExceeded);
  session.End(*one);
  absl::StatusOr<WriteSession::Ticket> alone = session.Begin(1000, now, nullptr);
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(session.Begin(1, now, nullptr).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(WriteSessionTest, AWaitingWriteGetsItsPlaceWhenTheOldestEnds) {
  WriteSession session;
  const absl::Time far = MonotonicNow() + absl::Minutes(5);
  std::vector<WriteSession::Ticket> tickets;
  for (uint64_t i = 1; i <= kSessionWindow; ++i) tickets.push_back(*session.Begin(1, far, nullptr));
  absl::Notification started;
  absl::StatusOr<WriteSession::Ticket> waited = absl::UnknownError("not run");
  std::thread waiter([&] {
    started.Notify();
    waited = session.Begin(1, far, nullptr);
  });
  started.WaitForNotification();
  session.End(tickets[0]);  // before or while the waiter waits: either way it gets 65
  waiter.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(waited->sequence, kSessionWindow + 1);
}

TEST(WriteSessionTest, ACancelledWaitTakesNoSequence) {
  WriteSession session;
  const absl::Time far = MonotonicNow() + absl::Minutes(5);
  for (uint64_t i = 1; i <= kSessionWindow; ++i) ASSERT_TRUE(session.Begin(1, far, nullptr).ok());
  Cancellation cancel;
  cancel.Cancel();
  EXPECT_EQ(session.Begin(1, far, &cancel).status().code(), absl::StatusCode::kCancelled);
}

TEST(WriteSessionTest, RenewStartsANewSessionOnceForItsWrites) {
  WriteSession session;
  const absl::Time now = MonotonicNow();
  const std::string first_id = session.session_id();
  EXPECT_EQ(first_id.size(), kSessionIdBytes);
  WriteSession::Ticket a = *session.Begin(1, now, nullptr);
  WriteSession::Ticket b = *session.Begin(1, now, nullptr);
  session.Renew(a);  // a's first attempt was refused: unknown session
  const std::string second_id = session.session_id();
  EXPECT_NE(second_id, first_id);
  session.Renew(b);  // b was refused for the same old session: already renewed
  EXPECT_EQ(session.session_id(), second_id);
  EXPECT_EQ(session.in_flight(), 0u);
  WriteSession::Ticket c = *session.Begin(1, now, nullptr);
  EXPECT_EQ(c.session_id, second_id);
  EXPECT_EQ(c.sequence, 1u);
  session.End(b);  // an old session's ticket: ignored
  EXPECT_EQ(session.in_flight(), 1u);
}

TEST(WriteSessionTest, SessionIdsDiffer) {
  WriteSession a, b;
  EXPECT_NE(a.session_id(), b.session_id());
}

}  // namespace
}  // namespace countersd
