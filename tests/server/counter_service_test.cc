// CounterServiceImpl's request handling (the Do* methods and HandleCall)
// on a real CounterTable in a temporary file, with no gRPC server: what each
// RPC returns for good and bad requests, and what it leaves in the table.
#include "server/counter_service.h"

#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/monotonic_time.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using namespace counters::v1;  // NOLINT: the RPC message types
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kCapacity = 1000;
constexpr size_t kMaxBatch = 4;

class CounterServiceTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    table_ = MustCreate(kCapacity);
    ASSERT_NE(table_, nullptr);
    absl::StatusOr<StatsArea> stats = StatsArea::Create();
    ASSERT_TRUE(stats.ok()) << stats.status();
    stats_.emplace(*std::move(stats));
    stats_->SetHandlerPid(0, getpid());  // as the supervisor does at the fork
    service_ = std::make_unique<CounterServiceImpl>(table_.get(), kMaxBatch, nullptr, &*stats_, 0);
  }

  int64_t Value(const std::string& key) {
    absl::StatusOr<int64_t> v = table_->Get(key);
    EXPECT_TRUE(v.ok()) << key << ": " << v.status();
    return v.ok() ? *v : 0;
  }
  bool Exists(const std::string& key) { return table_->Get(key).ok(); }

  static IncrementBatchRequest Batch(const std::vector<std::pair<std::string, int64_t>>& ops) {
    IncrementBatchRequest req;
    for (const auto& [key, delta] : ops) {
      IncrementRequest* inc = req.add_increments();
      inc->set_key(key);
      inc->set_delta(delta);
    }
    return req;
  }

  std::unique_ptr<CounterTable> table_;
  std::optional<StatsArea> stats_;
  std::unique_ptr<CounterServiceImpl> service_;
};

// ---- Increment ----

TEST_F(CounterServiceTest, IncrementWithoutADeltaAddsOne) {
  IncrementRequest req;
  req.set_key("hits");
  IncrementResponse resp;
  ASSERT_TRUE(service_->DoIncrement(req, &resp).ok());
  EXPECT_EQ(resp.value(), 1);
  ASSERT_TRUE(service_->DoIncrement(req, &resp).ok());
  EXPECT_EQ(resp.value(), 2);
  EXPECT_EQ(Value("hits"), 2);
}

TEST_F(CounterServiceTest, IncrementWithAnExplicitZeroDeltaAddsNothing) {
  IncrementRequest req;
  req.set_key("zero");
  req.set_delta(0);  // present, so not the default of 1
  IncrementResponse resp;
  ASSERT_TRUE(service_->DoIncrement(req, &resp).ok());
  EXPECT_EQ(resp.value(), 0);
}

TEST_F(CounterServiceTest, IncrementOfABadKeyIsInvalidArgument) {
  IncrementRequest req;  // empty key
  IncrementResponse resp;
  EXPECT_EQ(service_->DoIncrement(req, &resp).code(), absl::StatusCode::kInvalidArgument);
}

// ---- IncrementBatch ----

TEST_F(CounterServiceTest, IncrementBatchReturnsTheValueAfterEachIncrementInOrder) {
  IncrementBatchRequest req = Batch({{"a", 5}, {"b", -2}, {"a", 1}});
  req.add_increments()->set_key("c");  // no delta: 1
  IncrementBatchResponse resp;
  ASSERT_TRUE(service_->DoIncrementBatch(req, &resp).ok());
  EXPECT_THAT(resp.values(), ElementsAre(5, -2, 6, 1));
  EXPECT_EQ(Value("a"), 6);
  EXPECT_EQ(Value("c"), 1);
}

TEST_F(CounterServiceTest, AnEmptyIncrementBatchIsInvalidArgument) {
  IncrementBatchResponse resp;
  absl::Status s = service_->DoIncrementBatch(IncrementBatchRequest(), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("empty"));
}

TEST_F(CounterServiceTest, AnIncrementBatchOverMaxBatchIsResourceExhaustedAndAppliesNothing) {
  std::vector<std::pair<std::string, int64_t>> ops;
  for (size_t i = 0; i <= kMaxBatch; ++i) ops.push_back({absl::StrCat("k", i), 1});
  IncrementBatchResponse resp;
  absl::Status s = service_->DoIncrementBatch(Batch(ops), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("--max-batch=", kMaxBatch)));
  EXPECT_FALSE(Exists("k0"));
}

TEST_F(CounterServiceTest, AnIncrementBatchWithABadKeyNamesItsIndexAndAppliesNothing) {
  IncrementBatchResponse resp;
  absl::Status s = service_->DoIncrementBatch(Batch({{"good", 1}, {"", 1}}), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("increments[1]: "));
  EXPECT_FALSE(Exists("good"));
}

// ---- Get and BatchGet ----

TEST_F(CounterServiceTest, GetReturnsTheValueAndNotFoundForAMissingCounter) {
  ASSERT_TRUE(table_->Set("there", 7).ok());
  GetRequest req;
  req.set_key("there");
  GetResponse resp;
  ASSERT_TRUE(service_->DoGet(req, &resp).ok());
  EXPECT_EQ(resp.value(), 7);
  req.set_key("missing");
  EXPECT_EQ(service_->DoGet(req, &resp).code(), absl::StatusCode::kNotFound);
}

TEST_F(CounterServiceTest, BatchGetReturnsOneEntryPerKeyInOrderWithFound) {
  ASSERT_TRUE(table_->Set("x", 1).ok());
  ASSERT_TRUE(table_->Set("z", 3).ok());
  BatchGetRequest req;
  for (const char* key : {"z", "missing", "x", "z"}) req.add_keys(key);
  BatchGetResponse resp;
  ASSERT_TRUE(service_->DoBatchGet(req, &resp).ok());
  ASSERT_EQ(resp.counters_size(), 4);
  std::vector<std::tuple<std::string, int64_t, bool>> got;
  for (const counters::v1::Counter& c : resp.counters())
    got.emplace_back(c.key(), c.value(), c.found());
  EXPECT_THAT(got, ElementsAre(std::tuple{"z", 3, true}, std::tuple{"missing", 0, false},
                               std::tuple{"x", 1, true}, std::tuple{"z", 3, true}));
}

TEST_F(CounterServiceTest, BatchGetOverMaxBatchIsResourceExhausted) {
  BatchGetRequest req;
  for (size_t i = 0; i <= kMaxBatch; ++i) req.add_keys(absl::StrCat("k", i));
  BatchGetResponse resp;
  EXPECT_EQ(service_->DoBatchGet(req, &resp).code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(CounterServiceTest, BatchGetWithABadKeyNamesItsIndex) {
  BatchGetRequest req;
  req.add_keys("fine");
  req.add_keys(std::string("bad\x01key"));
  BatchGetResponse resp;
  absl::Status s = service_->DoBatchGet(req, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("keys[1]: "));
}

// ---- List ----

TEST_F(CounterServiceTest, ListPagesThroughAPrefixInKeyOrderWithPageTokens) {
  for (const char* key : {"p/c", "p/a", "q/x", "p/b"}) ASSERT_TRUE(table_->Set(key, 1).ok());
  ListRequest req;
  req.set_prefix("p/");
  req.set_page_size(2);
  ListResponse first;
  ASSERT_TRUE(service_->DoList(req, &first).ok());
  ASSERT_EQ(first.counters_size(), 2);
  EXPECT_EQ(first.counters(0).key(), "p/a");
  EXPECT_EQ(first.counters(1).key(), "p/b");
  EXPECT_TRUE(first.counters(0).found());
  EXPECT_EQ(first.next_page_token(), "p/b");

  req.set_page_token(first.next_page_token());
  ListResponse second;
  ASSERT_TRUE(service_->DoList(req, &second).ok());
  ASSERT_EQ(second.counters_size(), 1);
  EXPECT_EQ(second.counters(0).key(), "p/c");
  EXPECT_TRUE(second.next_page_token().empty());  // the listing is complete
}

TEST_F(CounterServiceTest, ListWithAPageSizeOfZeroUsesTheDefault) {
  for (int i = 0; i < CounterServiceImpl::kDefaultPageSize + 1; ++i) {
    ASSERT_TRUE(table_->Set(absl::StrCat("k", 1000 + i), i).ok());
  }
  ListResponse resp;
  ASSERT_TRUE(service_->DoList(ListRequest(), &resp).ok());
  EXPECT_EQ(resp.counters_size(), CounterServiceImpl::kDefaultPageSize);
  EXPECT_FALSE(resp.next_page_token().empty());
}

TEST_F(CounterServiceTest, ListWithAPageTokenOutsideThePrefixIsInvalidArgument) {
  ListRequest req;
  req.set_prefix("p/");
  req.set_page_token("q/a");  // not from a listing of "p/"
  ListResponse resp;
  absl::Status s = service_->DoList(req, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("page_token"));
  req.set_page_token(std::string("p/\x01"));  // not a key at all
  EXPECT_EQ(service_->DoList(req, &resp).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CounterServiceTest, ListWithANegativePageSizeIsInvalidArgument) {
  ListRequest req;
  req.set_page_size(-1);
  ListResponse resp;
  EXPECT_EQ(service_->DoList(req, &resp).code(), absl::StatusCode::kInvalidArgument);
}

// ---- Set, CompareAndSet, Delete ----

TEST_F(CounterServiceTest, SetReturnsThePreviousValueOnlyWhenThereWasOne) {
  SetRequest req;
  req.set_key("s");
  req.set_value(5);
  SetResponse created;
  ASSERT_TRUE(service_->DoSet(req, &created).ok());
  EXPECT_FALSE(created.has_previous_value());
  req.set_value(9);
  SetResponse replaced;
  ASSERT_TRUE(service_->DoSet(req, &replaced).ok());
  ASSERT_TRUE(replaced.has_previous_value());
  EXPECT_EQ(replaced.previous_value(), 5);
  EXPECT_EQ(Value("s"), 9);
}

TEST_F(CounterServiceTest, CompareAndSetAppliesOnlyWhenTheValueMatches) {
  CompareAndSetRequest req;
  req.set_key("cas");
  req.set_expected(0);  // a missing counter counts as 0
  req.set_value(10);
  CompareAndSetResponse resp;
  ASSERT_TRUE(service_->DoCompareAndSet(req, &resp).ok());
  EXPECT_TRUE(resp.applied());
  EXPECT_EQ(resp.value(), 10);

  req.set_expected(3);  // it holds 10
  req.set_value(20);
  ASSERT_TRUE(service_->DoCompareAndSet(req, &resp).ok());
  EXPECT_FALSE(resp.applied());
  EXPECT_EQ(resp.value(), 10);  // the current value
  EXPECT_EQ(Value("cas"), 10);
}

TEST_F(CounterServiceTest, DeleteReturnsThePreviousValueThenNotFound) {
  ASSERT_TRUE(table_->Set("d", 42).ok());
  DeleteRequest req;
  req.set_key("d");
  DeleteResponse resp;
  ASSERT_TRUE(service_->DoDelete(req, &resp).ok());
  EXPECT_EQ(resp.previous_value(), 42);
  EXPECT_FALSE(Exists("d"));
  EXPECT_EQ(service_->DoDelete(req, &resp).code(), absl::StatusCode::kNotFound);
}

// ---- GetStats and the call accounting ----

TEST_F(CounterServiceTest, GetStatsReportsThisHandlerTheTableAndTheServingPid) {
  ASSERT_TRUE(table_->RegisterProcess(getpid(), ProcessRole::kHandler).ok());
  ASSERT_TRUE(table_->Set("a", 1).ok());
  ASSERT_TRUE(table_->Set("b", 2).ok());
  GetRequest missing;
  missing.set_key("missing");
  GetResponse get;
  IncrementRequest inc;
  inc.set_key("a");
  IncrementResponse inc_resp;
  EXPECT_TRUE(service_->HandleCall(&CounterServiceImpl::DoIncrement, inc, &inc_resp).ok());
  EXPECT_EQ(service_->HandleCall(&CounterServiceImpl::DoGet, missing, &get).code(),
            absl::StatusCode::kNotFound);

  GetStatsResponse stats;
  ASSERT_TRUE(service_->DoGetStats(GetStatsRequest(), &stats).ok());
  ASSERT_EQ(stats.handlers_size(), 1);
  EXPECT_EQ(stats.handlers(0).pid(), getpid());
  EXPECT_EQ(stats.handlers(0).calls(), 2u);
  EXPECT_EQ(stats.handlers(0).errors(), 1u);
  EXPECT_EQ(stats.capacity(), kCapacity);
  EXPECT_EQ(stats.used(), 2u);
  EXPECT_EQ(stats.last_snapshot_generation(), 0u);  // no snapshot written yet
  EXPECT_EQ(stats.served_by_pid(), getpid());
}

TEST_F(CounterServiceTest, CallsAreCountedByMethodAndCodeInTheHandlersStatsRow) {
  IncrementRequest inc;
  inc.set_key("a");
  IncrementResponse inc_resp;
  GetRequest missing;
  missing.set_key("missing");
  GetResponse get;
  EXPECT_TRUE(service_->HandleCall(&CounterServiceImpl::DoIncrement, inc, &inc_resp).ok());
  EXPECT_TRUE(service_->HandleCall(&CounterServiceImpl::DoIncrement, inc, &inc_resp).ok());
  EXPECT_FALSE(service_->HandleCall(&CounterServiceImpl::DoGet, missing, &get).ok());
  const CallTotals t = stats_->Totals();
  const int increment = static_cast<int>(RpcMethod::kIncrement);
  const int get_method = static_cast<int>(RpcMethod::kGet);
  EXPECT_EQ(t.requests[increment][0], 2u);
  EXPECT_EQ(t.requests[get_method][static_cast<int>(absl::StatusCode::kNotFound)], 1u);
  uint64_t timed = 0;
  for (uint64_t n : t.buckets[increment]) timed += n;
  EXPECT_EQ(timed, 2u);  // each call in one latency bucket
  EXPECT_EQ(t.calls(), 3u);
  EXPECT_EQ(t.errors(), 1u);
}

TEST_F(CounterServiceTest, GetStatsKeepsARespawnedHandlersCallsAndReportsRestarts) {
  ASSERT_TRUE(table_->RegisterProcess(getpid(), ProcessRole::kHandler).ok());
  IncrementRequest inc;
  inc.set_key("a");
  IncrementResponse inc_resp;
  EXPECT_TRUE(service_->HandleCall(&CounterServiceImpl::DoIncrement, inc, &inc_resp).ok());
  // The handler of row 0 "dies" and its successor (this pid again) counts on.
  stats_->RecordRestart(RestartRole::kHandler, ExitReason::kSignaled);
  service_ = std::make_unique<CounterServiceImpl>(table_.get(), kMaxBatch, nullptr, &*stats_, 0);
  EXPECT_TRUE(service_->HandleCall(&CounterServiceImpl::DoIncrement, inc, &inc_resp).ok());

  GetStatsResponse stats;
  ASSERT_TRUE(service_->DoGetStats(GetStatsRequest(), &stats).ok());
  ASSERT_EQ(stats.handlers_size(), 1);
  EXPECT_EQ(stats.handlers(0).calls(), 2u);
  ASSERT_EQ(stats.restarts_size(), 1);
  EXPECT_EQ(stats.restarts(0).role(), "handler");
  EXPECT_EQ(stats.restarts(0).reason(), "signaled");
  EXPECT_EQ(stats.restarts(0).count(), 1u);
}

TEST_F(CounterServiceTest, GetStatsReportsEachHandlersConnectionsAndTheirTotals) {
  ASSERT_TRUE(table_->RegisterProcess(getpid(), ProcessRole::kHandler).ok());
  table_->PublishConnections({.accepted = 7, .refused = 3, .handshake_timeouts = 2, .open = 4});
  GetStatsResponse stats;
  ASSERT_TRUE(service_->DoGetStats(GetStatsRequest(), &stats).ok());
  ASSERT_EQ(stats.handlers_size(), 1);
  for (const ConnectionStats& c : {stats.handlers(0).connections(), stats.connections()}) {
    EXPECT_EQ(c.accepted(), 7u);
    EXPECT_EQ(c.refused_over_cap(), 3u);
    EXPECT_EQ(c.handshake_timeouts(), 2u);
    EXPECT_EQ(c.open(), 4u);
  }
}

// A handler that dies leaves its totals in GetStats' (RecoverDeadProcess
// moves them out of its freed slot), not its open connections, and the
// slot's next claimer starts from zero.
TEST_F(CounterServiceTest, GetStatsTotalsKeepADeadHandlersConnections) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    bool ok = table_->RegisterProcess(getpid(), ProcessRole::kHandler).ok();
    table_->PublishConnections({.accepted = 5, .refused = 11, .handshake_timeouts = 1, .open = 3});
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(table_->RecoverDeadProcess(child).stats_slot_freed);

  ASSERT_TRUE(table_->RegisterProcess(getpid(), ProcessRole::kHandler).ok());
  table_->PublishConnections({.accepted = 2, .refused = 0, .handshake_timeouts = 0, .open = 2});
  GetStatsResponse stats;
  ASSERT_TRUE(service_->DoGetStats(GetStatsRequest(), &stats).ok());
  ASSERT_EQ(stats.handlers_size(), 1);
  EXPECT_EQ(stats.handlers(0).pid(), getpid());
  EXPECT_EQ(stats.handlers(0).connections().accepted(), 2u);
  EXPECT_EQ(stats.handlers(0).connections().refused_over_cap(), 0u);
  EXPECT_EQ(stats.connections().accepted(), 7u);
  EXPECT_EQ(stats.connections().refused_over_cap(), 11u);
  EXPECT_EQ(stats.connections().handshake_timeouts(), 1u);
  EXPECT_EQ(stats.connections().open(), 2u);  // the dead one's closed with it
}

TEST_F(CounterServiceTest, GetStatsListsOnlyHandlers) {
  ASSERT_TRUE(table_->RegisterProcess(getpid(), ProcessRole::kAggregator).ok());
  GetStatsResponse stats;
  ASSERT_TRUE(service_->DoGetStats(GetStatsRequest(), &stats).ok());
  EXPECT_EQ(stats.handlers_size(), 0);
}

TEST_F(CounterServiceTest, CallsWhileDrainingFailUnavailableWithoutTouchingTheTable) {
  ASSERT_TRUE(table_->RegisterProcess(getpid(), ProcessRole::kHandler).ok());
  service_->StartDraining(MonotonicNow());
  IncrementRequest inc;
  inc.set_key("late");
  IncrementResponse resp;
  EXPECT_EQ(service_->HandleCall(&CounterServiceImpl::DoIncrement, inc, &resp).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(Exists("late"));
  GetStatsResponse stats;
  ASSERT_TRUE(service_->DoGetStats(GetStatsRequest(), &stats).ok());
  ASSERT_EQ(stats.handlers_size(), 1);
  EXPECT_EQ(stats.handlers(0).errors(), 1u);  // counted as a failed call
}

}  // namespace
}  // namespace countersd
