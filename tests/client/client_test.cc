// CounterClient failure paths that a real server cannot produce on demand
// (UNAVAILABLE exactly N times, malformed responses), driven through the
// generated gMock stub. Happy paths against the real daemon are in
// client_e2e_test.cc.
#include "client/client.h"

#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "grpcpp/test/client_context_test_peer.h"
#include "gmock/gmock.h"
#include "tests/client/mock_client.h"
#include "gtest/gtest.h"
#include "shared/monotonic_time.h"

namespace countersd {
namespace {

namespace v1 = ::counters::v1;
using ::testing::_;
using ::testing::DoAll;
using ::testing::Invoke;
using ::testing::Return;
using ::testing::SetArgPointee;


v1::GetResponse GetResponseOf(int64_t v) {
  v1::GetResponse r;
  r.set_value(v);
  return r;
}

TEST(CounterClientTest, GetRetriesUnavailableAndReturnsTheValue) {
  Fixture f;
  EXPECT_CALL(*f.stub, Get(_, _, _))
      .WillOnce(Return(kUnavailable))
      .WillOnce(Return(kUnavailable))
      .WillOnce(DoAll(SetArgPointee<2>(GetResponseOf(42)), Return(grpc::Status::OK)));
  absl::StatusOr<int64_t> v = f.client->Get("k");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 42);
}

TEST(CounterClientTest, GetGivesUpAfterMaxAttemptsWithUnavailable) {
  Fixture f;
  EXPECT_CALL(*f.stub, Get(_, _, _)).Times(4).WillRepeatedly(Return(kUnavailable));
  absl::StatusOr<int64_t> v = f.client->Get("k");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(v.status().message(), "connection reset");
}

TEST(CounterClientTest, MaxAttemptsOfOneDisablesRetries) {
  ClientOptions o = FastRetries();
  o.max_attempts = 1;
  Fixture f(o);
  EXPECT_CALL(*f.stub, Get(_, _, _)).Times(1).WillOnce(Return(kUnavailable));
  EXPECT_EQ(f.client->Get("k").status().code(), absl::StatusCode::kUnavailable);
}

TEST(CounterClientTest, GetDoesNotRetryNotFoundAndKeepsTheMessage) {
  Fixture f;
  EXPECT_CALL(*f.stub, Get(_, _, _))
      .Times(1)
      .WillOnce(Return(grpc::Status(grpc::StatusCode::NOT_FOUND, "no counter \"k\"")));
  absl::StatusOr<int64_t> v = f.client->Get("k");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(v.status().message(), "no counter \"k\"");
}

// Without exactly-once (ClientOptions::exactly_once = false), today's
// behaviour: writes are sent once, with no WriteOptions. Their retries with
// a session are in exactly_once_test.cc.
ClientOptions WithoutExactlyOnce() {
  ClientOptions o = FastRetries();
  o.exactly_once = false;
  return o;
}

TEST(CounterClientTest, WithoutExactlyOnceIncrementIsNotRetriedOnUnavailable) {
  Fixture f(WithoutExactlyOnce());
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .Times(1)
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::IncrementRequest& req,
                          v1::IncrementResponse*) {
        EXPECT_FALSE(req.has_options());
        return kUnavailable;
      }));
  absl::StatusOr<int64_t> v = f.client->Increment("k", 5);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(v.status().message(), "connection reset");  // no "outcome unknown" note either
}

TEST(CounterClientTest, WithoutExactlyOnceNoMutationIsRetriedNorCarriesOptions) {
  Fixture f(WithoutExactlyOnce());
  EXPECT_CALL(*f.stub, IncrementBatch(_, _, _))
      .Times(1)
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::IncrementBatchRequest& req,
                          v1::IncrementBatchResponse*) {
        EXPECT_FALSE(req.has_options());
        return kUnavailable;
      }));
  EXPECT_CALL(*f.stub, Set(_, _, _))
      .Times(1)
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::SetRequest& req, v1::SetResponse*) {
        EXPECT_FALSE(req.has_options());
        return kUnavailable;
      }));
  EXPECT_CALL(*f.stub, CompareAndSet(_, _, _))
      .Times(1)
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::CompareAndSetRequest& req,
                          v1::CompareAndSetResponse*) {
        EXPECT_FALSE(req.has_options());
        return kUnavailable;
      }));
  EXPECT_CALL(*f.stub, Delete(_, _, _))
      .Times(1)
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::DeleteRequest& req, v1::DeleteResponse*) {
        EXPECT_FALSE(req.has_options());
        return kUnavailable;
      }));
  const IncrementOp ops[] = {{"a", 1}};
  EXPECT_EQ(f.client->IncrementBatch(ops).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.client->Set("k", 1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.client->CompareAndSet("k", 0, 1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(f.client->Delete("k").status().code(), absl::StatusCode::kUnavailable);
}

TEST(CounterClientTest, SnapshotIsNeverRetried) {
  Fixture f;  // exactly-once or not: each attempt would write a snapshot
  EXPECT_CALL(*f.stub, Snapshot(_, _, _)).Times(1).WillOnce(Return(kUnavailable));
  EXPECT_EQ(f.client->Snapshot().status().code(), absl::StatusCode::kUnavailable);
}

TEST(CounterClientTest, EveryReadIsRetriedOnUnavailable) {
  Fixture f;
  v1::BatchGetResponse batch;
  auto* c = batch.add_counters();
  c->set_key("a");
  c->set_value(1);
  c->set_found(true);
  EXPECT_CALL(*f.stub, BatchGet(_, _, _))
      .WillOnce(Return(kUnavailable))
      .WillOnce(DoAll(SetArgPointee<2>(batch), Return(grpc::Status::OK)));
  EXPECT_CALL(*f.stub, List(_, _, _))
      .WillOnce(Return(kUnavailable))
      .WillOnce(Return(grpc::Status::OK));
  EXPECT_CALL(*f.stub, GetStats(_, _, _))
      .WillOnce(Return(kUnavailable))
      .WillOnce(Return(grpc::Status::OK));
  EXPECT_TRUE(f.client->BatchGet(std::vector<std::string>{"a"}).ok());
  EXPECT_TRUE(f.client->List("").ok());
  EXPECT_TRUE(f.client->GetStats().ok());
}

TEST(CounterClientTest, IncrementSendsKeyAndDeltaAndReturnsNewValue) {
  Fixture f;
  v1::IncrementResponse response;
  response.set_value(-7);
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillOnce(Invoke(
          [&](grpc::ClientContext*, const v1::IncrementRequest& req, v1::IncrementResponse* resp) {
            EXPECT_EQ(req.key(), "k");
            EXPECT_TRUE(req.has_delta());
            EXPECT_EQ(req.delta(), -3);
            *resp = response;
            return grpc::Status::OK;
          }));
  absl::StatusOr<int64_t> v = f.client->Increment("k", -3);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, -7);
}

TEST(CounterClientTest, EveryCallCarriesTheConfiguredDeadline) {
  ClientOptions o = FastRetries();
  o.timeout = absl::Seconds(7);
  o.attempt_timeout = absl::ZeroDuration();  // a write's attempts too: exactly_once_test.cc
  Fixture f(o);
  std::chrono::system_clock::time_point seen{};
  EXPECT_CALL(*f.stub, Increment(_, _, _))
      .WillOnce(Invoke(
          [&](grpc::ClientContext* ctx, const v1::IncrementRequest&, v1::IncrementResponse*) {
            seen = ctx->deadline();
            return grpc::Status::OK;
          }));
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(f.client->Increment("k").ok());
  const auto after = std::chrono::system_clock::now();
  EXPECT_GE(seen, before + std::chrono::seconds(7) - std::chrono::milliseconds(1));
  EXPECT_LE(seen, after + std::chrono::seconds(7) + std::chrono::milliseconds(1));
}

TEST(CounterClientTest, RetriesShareTheFirstAttemptsDeadline) {
  Fixture f;
  std::vector<gpr_timespec> deadlines;
  EXPECT_CALL(*f.stub, Get(_, _, _))
      .Times(3)
      .WillRepeatedly(
          Invoke([&](grpc::ClientContext* ctx, const v1::GetRequest&, v1::GetResponse*) {
            deadlines.push_back(ctx->raw_deadline());
            return deadlines.size() < 3 ? kUnavailable : grpc::Status::OK;
          }));
  ASSERT_TRUE(f.client->Get("k").ok());
  ASSERT_EQ(deadlines.size(), 3u);
  // The same instant on gRPC's monotonic clock (proto/grpc_deadline.h).
  EXPECT_EQ(deadlines[0].clock_type, GPR_CLOCK_MONOTONIC);
  EXPECT_EQ(gpr_time_cmp(deadlines[0], deadlines[1]), 0);
  EXPECT_EQ(gpr_time_cmp(deadlines[1], deadlines[2]), 0);
}

TEST(CounterClientTest, NoRetryWhenTheBackOffWouldPassTheDeadline) {
  ClientOptions o;
  o.timeout = absl::Seconds(60);
  o.initial_backoff = absl::Minutes(4);  // sleeps at least 2 min: past the deadline
  o.max_backoff = absl::Minutes(4);
  Fixture f(o);
  std::chrono::system_clock::time_point deadline{};
  EXPECT_CALL(*f.stub, Get(_, _, _))
      .Times(1)  // no second attempt
      .WillOnce(Invoke([&](grpc::ClientContext* ctx, const v1::GetRequest&, v1::GetResponse*) {
        deadline = ctx->deadline();
        return kUnavailable;
      }));
  absl::StatusOr<int64_t> v = f.client->Get("k");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(v.status().message(), "connection reset");  // the attempt's own status
  // It gave up at once rather than sleeping towards the deadline: it returned
  // before the deadline the attempt carried, a minute away. No load makes one
  // call take that long; sleeping the back-off (two minutes or more) or until
  // the deadline would.
  EXPECT_LT(std::chrono::system_clock::now(), deadline)
      << "returned " << absl::FormatDuration(absl::FromChrono(std::chrono::system_clock::now()) -
                                               absl::FromChrono(deadline))
      << " after the attempt's deadline";
}

TEST(CounterClientTest, BatchGetWithWrongNumberOfEntriesIsInternal) {
  Fixture f;
  EXPECT_CALL(*f.stub, BatchGet(_, _, _)).WillOnce(Return(grpc::Status::OK));
  absl::StatusOr<std::vector<CounterEntry>> r =
      f.client->BatchGet(std::vector<std::string>{"a", "b"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
}

TEST(CounterClientTest, BatchGetReturnsEntriesInOrderWithFound) {
  Fixture f;
  v1::BatchGetResponse batch;
  for (auto [k, v, found] : {std::tuple{"a", 3, true}, std::tuple{"b", 0, false}}) {
    auto* c = batch.add_counters();
    c->set_key(k);
    c->set_value(v);
    c->set_found(found);
  }
  EXPECT_CALL(*f.stub, BatchGet(_, _, _))
      .WillOnce(Invoke(
          [&](grpc::ClientContext*, const v1::BatchGetRequest& req, v1::BatchGetResponse* resp) {
            EXPECT_THAT(req.keys(), ::testing::ElementsAre("a", "b"));
            *resp = batch;
            return grpc::Status::OK;
          }));
  absl::StatusOr<std::vector<CounterEntry>> r =
      f.client->BatchGet(std::vector<std::string>{"a", "b"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ::testing::ElementsAre(CounterEntry{"a", 3, true}, CounterEntry{"b", 0, false}));
}

TEST(CounterClientTest, ListAllFollowsPageTokensToTheEnd) {
  Fixture f;
  EXPECT_CALL(*f.stub, List(_, _, _))
      .Times(2)
      .WillRepeatedly(
          Invoke([](grpc::ClientContext*, const v1::ListRequest& req, v1::ListResponse* resp) {
            EXPECT_EQ(req.prefix(), "p/");
            auto* c = resp->add_counters();
            if (req.page_token().empty()) {
              c->set_key("p/a");
              c->set_value(1);
              resp->set_next_page_token("p/a");
            } else {
              EXPECT_EQ(req.page_token(), "p/a");
              c->set_key("p/b");
              c->set_value(2);
            }
            return grpc::Status::OK;
          }));
  absl::StatusOr<std::vector<CounterEntry>> all = f.client->ListAll("p/");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all,
              ::testing::ElementsAre(CounterEntry{"p/a", 1, true}, CounterEntry{"p/b", 2, true}));
}

TEST(CounterClientTest, ListAllStopsWhenTheServerRepeatsAPageToken) {
  Fixture f;
  EXPECT_CALL(*f.stub, List(_, _, _))
      .Times(2)
      .WillRepeatedly(
          Invoke([](grpc::ClientContext*, const v1::ListRequest&, v1::ListResponse* resp) {
            resp->set_next_page_token("same");
            return grpc::Status::OK;
          }));
  EXPECT_EQ(f.client->ListAll("").status().code(), absl::StatusCode::kInternal);
}

TEST(CounterClientTest, SetReportsAbsentPreviousValueAsNullopt) {
  Fixture f;
  v1::SetResponse with_previous;
  with_previous.set_previous_value(0);
  EXPECT_CALL(*f.stub, Set(_, _, _))
      .WillOnce(Return(grpc::Status::OK))
      .WillOnce(DoAll(SetArgPointee<2>(with_previous), Return(grpc::Status::OK)));
  absl::StatusOr<std::optional<int64_t>> first = f.client->Set("k", 5);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  absl::StatusOr<std::optional<int64_t>> second = f.client->Set("k", 6);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, std::optional<int64_t>(0));  // a previous value of 0 is not "absent"
}

TEST(CounterClientTest, HealthWithoutAChannelIsFailedPrecondition) {
  Fixture f;
  EXPECT_EQ(f.client->Health().status().code(), absl::StatusCode::kFailedPrecondition);
}

// Per-call options (CallOptions): a deadline, a token and a cancellation of
// this call only.
TEST(CounterClientTest, ACallsOwnTimeoutAndTokenReplaceTheClients) {
  ClientOptions o = FastRetries();
  o.bearer_token = "client-token";
  Fixture f(o);
  std::chrono::system_clock::time_point seen{};
  std::multimap<std::string, std::string> metadata;
  EXPECT_CALL(*f.stub, Get(_, _, _))
      .Times(2)
      .WillRepeatedly(Invoke([&](grpc::ClientContext* ctx, const v1::GetRequest&, v1::GetResponse*) {
        seen = ctx->deadline();
        metadata = grpc::testing::ClientContextTestPeer(ctx).GetSendInitialMetadata();
        return grpc::Status::OK;
      }));
  const auto before = std::chrono::system_clock::now();
  ASSERT_TRUE(f.client->Get("k", {.timeout = absl::Milliseconds(1500), .bearer_token = "mine"}).ok());
  const auto after = std::chrono::system_clock::now();
  EXPECT_GE(seen, before + std::chrono::milliseconds(1499));
  EXPECT_LE(seen, after + std::chrono::milliseconds(1501));
  EXPECT_THAT(metadata, ::testing::Contains(std::pair<const std::string, std::string>(
                            "authorization", "Bearer mine")));
  // Without call options: the client's.
  ASSERT_TRUE(f.client->Get("k").ok());
  EXPECT_THAT(metadata, ::testing::Contains(std::pair<const std::string, std::string>(
                            "authorization", "Bearer client-token")));
}

TEST(CounterClientTest, ACallGivenACancelledHandleIsNotSent) {
  Fixture f;
  EXPECT_CALL(*f.stub, Increment(_, _, _)).Times(0);
  auto cancel = std::make_shared<Cancellation>();
  cancel->Cancel();
  absl::StatusOr<int64_t> v = f.client->Increment("k", 1, {.cancellation = cancel});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kCancelled) << v.status();
}

TEST(CounterClientTest, CancellingDuringAnAttemptCancelsItsContextAndStopsTheRetries) {
  ClientOptions o = FastRetries();
  o.initial_backoff = absl::Minutes(2);  // a retry would wait minutes: cancelling cuts it
  o.max_backoff = absl::Minutes(2);
  o.timeout = absl::Minutes(10);
  Fixture f(o);
  auto cancel = std::make_shared<Cancellation>();
  EXPECT_CALL(*f.stub, Get(_, _, _))
      .Times(1)  // no retry once cancelled
      .WillOnce(Invoke([&](grpc::ClientContext*, const v1::GetRequest&, v1::GetResponse*) {
        cancel->Cancel();  // as another thread would, while the attempt is in flight
        return kUnavailable;
      }));
  absl::StatusOr<int64_t> v = f.client->Get("k", {.cancellation = cancel});
  EXPECT_EQ(v.status().code(), absl::StatusCode::kCancelled) << v.status();
}

TEST(CounterClientTest, CancelFromAnotherThreadEndsTheBackOff) {
  ClientOptions o = FastRetries();
  o.initial_backoff = absl::Minutes(2);
  o.max_backoff = absl::Minutes(2);
  o.timeout = absl::Minutes(10);
  Fixture f(o);
  auto cancel = std::make_shared<Cancellation>();
  absl::Notification attempted;
  EXPECT_CALL(*f.stub, Get(_, _, _))
      .Times(1)
      .WillOnce(Invoke([&](grpc::ClientContext*, const v1::GetRequest&, v1::GetResponse*) {
        attempted.Notify();
        return kUnavailable;
      }));
  std::thread canceller([&] {
    attempted.WaitForNotification();
    cancel->Cancel();
  });
  absl::StatusOr<int64_t> v = f.client->Get("k", {.cancellation = cancel});
  canceller.join();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kCancelled) << v.status();
}

}  // namespace
}  // namespace countersd
