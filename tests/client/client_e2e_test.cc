// CounterClient against a real countersd: every call's happy path and the
// server's error codes arriving unchanged; and an unreachable daemon.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::ElementsAre;

class CounterClientE2ETest : public SharedDaemonTest {
 protected:
  static void SetUpTestSuite() {
    DaemonOptions options;
    options.handlers = 2;
    options.capacity = 10000;
    StartSharedDaemon(options);
  }
  void SetUp() override {
    SharedDaemonTest::SetUp();
    if (daemon_) client_ = std::make_unique<CounterClient>(daemon_->address());
  }
  static std::string Key(const std::string& suffix) { return TestKey(suffix); }

  std::unique_ptr<CounterClient> client_;
};

TEST_F(CounterClientE2ETest, IncrementCreatesAtZeroAndAddsSignedDeltas) {
  const std::string k = Key("k");
  EXPECT_EQ(*client_->Increment(k), 1);
  EXPECT_EQ(*client_->Increment(k, 10), 11);
  EXPECT_EQ(*client_->Increment(k, -20), -9);
  EXPECT_EQ(*client_->Get(k), -9);
}

TEST_F(CounterClientE2ETest, ServerErrorCodesArriveUnchanged) {
  const std::string k = Key("k");
  EXPECT_EQ(client_->Get(k).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Delete(k).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Increment("").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(client_->Set(k, std::numeric_limits<int64_t>::max()).ok());
  EXPECT_EQ(client_->Increment(k).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*client_->Get(k), std::numeric_limits<int64_t>::max());
}

TEST_F(CounterClientE2ETest, IncrementBatchReturnsEachValueInOrder) {
  const std::string a = Key("a"), b = Key("b");
  const IncrementOp ops[] = {{a, 1}, {b, 5}, {a, 2}};
  absl::StatusOr<std::vector<int64_t>> values = client_->IncrementBatch(ops);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_THAT(*values, ElementsAre(1, 5, 3));
}

TEST_F(CounterClientE2ETest, BatchGetMarksMissingCounters) {
  const std::string a = Key("a"), missing = Key("missing");
  ASSERT_TRUE(client_->Set(a, 4).ok());
  absl::StatusOr<std::vector<CounterEntry>> got =
      client_->BatchGet(std::vector<std::string>{missing, a});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(CounterEntry{missing, 0, false}, CounterEntry{a, 4, true}));
}

TEST_F(CounterClientE2ETest, ListPagesAndListAllCollectsEveryPage) {
  const std::string p = Key("");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client_->Set(absl::StrCat(p, i), i).ok());
  absl::StatusOr<ListPage> first = client_->List(p, 2);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->counters.size(), 2u);
  EXPECT_FALSE(first->next_page_token.empty());
  absl::StatusOr<ListPage> second = client_->List(p, 2, first->next_page_token);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->counters[0].key, absl::StrCat(p, 2));

  absl::StatusOr<std::vector<CounterEntry>> all = client_->ListAll(p);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*all)[i], (CounterEntry{absl::StrCat(p, i), i, true}));
  EXPECT_EQ(client_->ListAll(p, 3).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(CounterClientE2ETest, SetCompareAndSetAndDelete) {
  const std::string k = Key("k");
  absl::StatusOr<std::optional<int64_t>> set = client_->Set(k, 7);
  ASSERT_TRUE(set.ok());
  EXPECT_FALSE(set->has_value());
  EXPECT_EQ(**client_->Set(k, 8), 7);
  absl::StatusOr<CompareAndSetResult> refused = client_->CompareAndSet(k, 7, 9);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->applied);
  EXPECT_EQ(refused->value, 8);
  absl::StatusOr<CompareAndSetResult> applied = client_->CompareAndSet(k, 8, 9);
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(applied->applied);
  EXPECT_EQ(applied->value, 9);
  EXPECT_EQ(*client_->Delete(k), 9);
  EXPECT_EQ(client_->Get(k).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CounterClientE2ETest, SnapshotStatsAndHealth) {
  absl::StatusOr<SnapshotResult> s1 = client_->Snapshot();
  ASSERT_TRUE(s1.ok()) << s1.status();
  absl::StatusOr<SnapshotResult> s2 = client_->Snapshot();
  ASSERT_TRUE(s2.ok()) << s2.status();
  EXPECT_GT(s2->generation, s1->generation);

  absl::StatusOr<counters::v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->capacity(), 10000u);
  EXPECT_EQ(stats->handlers_size(), 2);
  EXPECT_GE(stats->last_snapshot_generation(), s2->generation);

  absl::StatusOr<ServingStatus> health = client_->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, ServingStatus::kServing);
  EXPECT_EQ(client_->Health("no.such.Service").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CounterClientE2ETest, WorksOnACallerSuppliedChannel) {
  auto channel = grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials());
  CounterClient client(channel);
  EXPECT_EQ(client.channel(), channel);
  EXPECT_EQ(*client.Increment(Key("k"), 3), 3);
  EXPECT_EQ(*client.Health(), ServingStatus::kServing);
}

TEST(CounterClientUnreachableTest, ReadsRetryThenFailUnavailableWithinTheDeadline) {
  // Port 1 on loopback: nothing listens there, connections are refused.
  ClientOptions options;
  options.timeout = absl::Seconds(20);
  options.max_attempts = 3;
  options.initial_backoff = absl::Milliseconds(10);
  CounterClient client("127.0.0.1:1", options);
  EXPECT_EQ(client.Get("k").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.Health().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.Increment("k").status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace countersd::testing
