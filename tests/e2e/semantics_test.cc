// Every RPC and every status code, through the wire, against the real
// daemon: one countersd per test binary run (each test uses its own keys).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "countersd_version.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kMaxBatch = 50;
constexpr uint64_t kSmallCapacity = 64;

class SemanticsTest : public SharedDaemonTest {
 protected:
  static void SetUpTestSuite() {
    DaemonOptions options;
    options.handlers = 2;
    options.extra_flags = {absl::StrCat("--max-batch=", kMaxBatch)};
    StartSharedDaemon(options);
  }
  void SetUp() override {
    SharedDaemonTest::SetUp();
    if (daemon_) stub_ = NewStub(daemon_->address());
    prefix_ = TestKey("");
  }
  // Keys unique to this test.
  std::string Key(std::string_view name) const { return TestKey(name); }

  grpc::Status Increment(const std::string& key, std::optional<int64_t> delta, int64_t* value) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    counters::v1::IncrementRequest req;
    req.set_key(key);
    if (delta) req.set_delta(*delta);
    counters::v1::IncrementResponse resp;
    grpc::Status s = stub_->Increment(&ctx, req, &resp);
    if (value != nullptr) *value = resp.value();
    return s;
  }
  grpc::Status Get(const std::string& key, int64_t* value) {
    grpc::ClientContext ctx;
    counters::v1::GetRequest req;
    req.set_key(key);
    counters::v1::GetResponse resp;
    grpc::Status s = stub_->Get(&ctx, req, &resp);
    if (value != nullptr) *value = resp.value();
    return s;
  }
  grpc::Status Set(const std::string& key, int64_t value, counters::v1::SetResponse* resp) {
    grpc::ClientContext ctx;
    counters::v1::SetRequest req;
    req.set_key(key);
    req.set_value(value);
    counters::v1::SetResponse ignored;
    return stub_->Set(&ctx, req, resp != nullptr ? resp : &ignored);
  }
  grpc::Status Batch(const std::vector<std::pair<std::string, int64_t>>& ops,
                     std::vector<int64_t>* values) {
    grpc::ClientContext ctx;
    counters::v1::IncrementBatchRequest req;
    for (const auto& [key, delta] : ops) {
      auto* inc = req.add_increments();
      inc->set_key(key);
      inc->set_delta(delta);
    }
    counters::v1::IncrementBatchResponse resp;
    grpc::Status s = stub_->IncrementBatch(&ctx, req, &resp);
    if (values != nullptr) values->assign(resp.values().begin(), resp.values().end());
    return s;
  }
  counters::v1::ListResponse List(const std::string& prefix, int page_size,
                                  const std::string& token, grpc::Status* status) {
    grpc::ClientContext ctx;
    counters::v1::ListRequest req;
    req.set_prefix(prefix);
    req.set_page_size(page_size);
    req.set_page_token(token);
    counters::v1::ListResponse resp;
    *status = stub_->List(&ctx, req, &resp);
    return resp;
  }
  counters::v1::GetStatsResponse Stats() {
    grpc::ClientContext ctx;
    counters::v1::GetStatsResponse resp;
    grpc::Status s = stub_->GetStats(&ctx, counters::v1::GetStatsRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  std::unique_ptr<CounterService::Stub> stub_;
  std::string prefix_;
};

// ---- Increment ----

TEST_F(SemanticsTest, IncrementWithoutDeltaCreatesAtZeroAndAddsOne) {
  int64_t v = 0;
  ASSERT_TRUE(Increment(Key("a"), std::nullopt, &v).ok());
  EXPECT_EQ(v, 1);
  ASSERT_TRUE(Increment(Key("a"), std::nullopt, &v).ok());
  EXPECT_EQ(v, 2);
}

TEST_F(SemanticsTest, IncrementAddsDeltaAndNegativeDeltaDecrements) {
  int64_t v = 0;
  ASSERT_TRUE(Increment(Key("a"), 10, &v).ok());
  EXPECT_EQ(v, 10);
  ASSERT_TRUE(Increment(Key("a"), -25, &v).ok());
  EXPECT_EQ(v, -15);
  ASSERT_TRUE(Increment(Key("a"), 0, &v).ok());
  EXPECT_EQ(v, -15);
  ASSERT_TRUE(Get(Key("a"), &v).ok());
  EXPECT_EQ(v, -15);
}

TEST_F(SemanticsTest, IncrementPastInt64MaxFailsOutOfRangeAndKeepsValue) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(Set(Key("hi"), max - 1, nullptr).ok());
  grpc::Status s = Increment(Key("hi"), 2, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
  int64_t v = 0;
  ASSERT_TRUE(Get(Key("hi"), &v).ok());
  EXPECT_EQ(v, max - 1);
  ASSERT_TRUE(Increment(Key("hi"), 1, &v).ok());  // exactly max is fine
  EXPECT_EQ(v, max);
}

TEST_F(SemanticsTest, DecrementPastInt64MinFailsOutOfRangeAndKeepsValue) {
  const int64_t min = std::numeric_limits<int64_t>::min();
  ASSERT_TRUE(Set(Key("lo"), min, nullptr).ok());
  grpc::Status s = Increment(Key("lo"), -1, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
  int64_t v = 0;
  ASSERT_TRUE(Get(Key("lo"), &v).ok());
  EXPECT_EQ(v, min);
}

// ---- Keys ----

TEST_F(SemanticsTest, BadKeysAreInvalidArgumentOnEveryKeyedRpc) {
  const std::vector<std::string> bad = {
      "", std::string(161, 'k'), "tab\there", std::string("nul\0x", 5), "del\x7f", "c1\xc2\x85"};
  for (const std::string& key : bad) {
    SCOPED_TRACE(absl::StrCat("key of ", key.size(), " bytes"));
    grpc::Status s = Increment(key, 1, nullptr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_FALSE(s.error_message().empty());
    s = Get(key, nullptr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    s = Set(key, 1, nullptr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    {
      grpc::ClientContext ctx;
      counters::v1::CompareAndSetRequest req;
      req.set_key(key);
      counters::v1::CompareAndSetResponse resp;
      s = stub_->CompareAndSet(&ctx, req, &resp);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    }
    {
      grpc::ClientContext ctx;
      counters::v1::DeleteRequest req;
      req.set_key(key);
      counters::v1::DeleteResponse resp;
      s = stub_->Delete(&ctx, req, &resp);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    }
  }
}

TEST_F(SemanticsTest, LongestKeyAndMultibyteUtf8KeysWork) {
  std::string longest = Key("");
  longest.resize(160, 'x');
  int64_t v = 0;
  ASSERT_TRUE(Increment(longest, 7, &v).ok());
  ASSERT_TRUE(Get(longest, &v).ok());
  EXPECT_EQ(v, 7);
  const std::string utf8 = Key("z\xc3\xbcrich/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80");
  ASSERT_TRUE(Increment(utf8, 3, &v).ok());
  ASSERT_TRUE(Get(utf8, &v).ok());
  EXPECT_EQ(v, 3);
}

// ---- Get / Delete ----

TEST_F(SemanticsTest, GetOfMissingCounterIsNotFound) {
  grpc::Status s = Get(Key("missing"), nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

TEST_F(SemanticsTest, DeleteReturnsPreviousValueAndThenCounterIsGone) {
  ASSERT_TRUE(Increment(Key("d"), 41, nullptr).ok());
  grpc::ClientContext ctx;
  counters::v1::DeleteRequest req;
  req.set_key(Key("d"));
  counters::v1::DeleteResponse resp;
  ASSERT_TRUE(stub_->Delete(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.previous_value(), 41);
  EXPECT_EQ(Get(Key("d"), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext ctx2;
  grpc::Status s = stub_->Delete(&ctx2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  int64_t v = 0;  // recreated from 0
  ASSERT_TRUE(Increment(Key("d"), std::nullopt, &v).ok());
  EXPECT_EQ(v, 1);
}

// ---- IncrementBatch ----

TEST_F(SemanticsTest, IncrementBatchAppliesAllInOrderIncludingRepeatedKeys) {
  std::vector<int64_t> values;
  grpc::Status s = Batch({{Key("x"), 1}, {Key("y"), 10}, {Key("x"), 2}, {Key("x"), -5}}, &values);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(values, ElementsAre(1, 10, 3, -2));
  int64_t v = 0;
  ASSERT_TRUE(Get(Key("x"), &v).ok());
  EXPECT_EQ(v, -2);
}

TEST_F(SemanticsTest, IncrementBatchWithOneOverflowAppliesNothing) {
  ASSERT_TRUE(Set(Key("big"), std::numeric_limits<int64_t>::max(), nullptr).ok());
  ASSERT_TRUE(Set(Key("small"), 5, nullptr).ok());
  grpc::Status s = Batch({{Key("small"), 1}, {Key("new"), 1}, {Key("big"), 1}}, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
  int64_t v = 0;
  ASSERT_TRUE(Get(Key("small"), &v).ok());
  EXPECT_EQ(v, 5);
  EXPECT_EQ(Get(Key("new"), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Get(Key("big"), &v).ok());
  EXPECT_EQ(v, std::numeric_limits<int64_t>::max());
}

TEST_F(SemanticsTest, IncrementBatchWithBadKeyNamesItsIndexAndAppliesNothing) {
  grpc::Status s = Batch({{Key("ok"), 1}, {Key("also-ok"), 1}, {"bad\x01", 1}}, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("[2]"));
  EXPECT_EQ(Get(Key("ok"), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SemanticsTest, EmptyIncrementBatchIsInvalidArgument) {
  grpc::Status s = Batch({}, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

TEST_F(SemanticsTest, BatchesLargerThanMaxBatchAreResourceExhaustedAndApplyNothing) {
  std::vector<std::pair<std::string, int64_t>> ops;
  for (int i = 0; i <= kMaxBatch; ++i) ops.emplace_back(Key(absl::StrCat("k", i)), 1);
  grpc::Status s = Batch(ops, nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("--max-batch"));
  EXPECT_EQ(Get(Key("k0"), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  ops.pop_back();  // exactly the limit is fine
  s = Batch(ops, nullptr);
  EXPECT_TRUE(s.ok()) << s.error_message();

  grpc::ClientContext ctx;
  counters::v1::BatchGetRequest req;
  for (int i = 0; i <= kMaxBatch; ++i) req.add_keys(Key(absl::StrCat("k", i)));
  counters::v1::BatchGetResponse resp;
  s = stub_->BatchGet(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
}

// ---- BatchGet ----

TEST_F(SemanticsTest, BatchGetReturnsOneEntryPerKeyInOrderWithFound) {
  ASSERT_TRUE(Set(Key("b"), 2, nullptr).ok());
  ASSERT_TRUE(Set(Key("a"), 1, nullptr).ok());
  grpc::ClientContext ctx;
  counters::v1::BatchGetRequest req;
  for (const char* k : {"b", "missing", "a", "b"}) req.add_keys(Key(k));
  counters::v1::BatchGetResponse resp;
  grpc::Status s = stub_->BatchGet(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.counters_size(), 4);
  EXPECT_EQ(resp.counters(0).key(), Key("b"));
  EXPECT_EQ(resp.counters(0).value(), 2);
  EXPECT_TRUE(resp.counters(0).found());
  EXPECT_EQ(resp.counters(1).key(), Key("missing"));
  EXPECT_FALSE(resp.counters(1).found());
  EXPECT_EQ(resp.counters(1).value(), 0);
  EXPECT_EQ(resp.counters(2).value(), 1);
  EXPECT_TRUE(resp.counters(3).found());

  grpc::ClientContext ctx2;
  req.add_keys("");
  s = stub_->BatchGet(&ctx2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("[4]"));
}

// ---- List ----

TEST_F(SemanticsTest, ListPagesAreSortedCompleteAndStableUnderInserts) {
  std::vector<std::string> keys;
  for (int i = 0; i < 25; ++i) keys.push_back(Key(absl::StrFormat("k%02d", (i * 7) % 25)));
  for (const std::string& k : keys) ASSERT_TRUE(Increment(k, 1, nullptr).ok());
  ASSERT_TRUE(Increment(absl::StrCat(prefix_.substr(0, prefix_.size() - 1), "~other"), 1, nullptr)
                  .ok());  // shares a shorter prefix only
  std::sort(keys.begin(), keys.end());

  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    grpc::Status s;
    counters::v1::ListResponse page = List(prefix_, 10, token, &s);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_LE(page.counters_size(), 10);
    for (const auto& c : page.counters()) listed.push_back(c.key());
    token = page.next_page_token();
    if (pages == 0) {
      // A key that sorts before the token, added between pages, must not
      // shift or repeat what follows.
      ASSERT_TRUE(Increment(Key("k00-late"), 1, nullptr).ok());
    }
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(listed, keys);

  grpc::Status s;
  counters::v1::ListResponse all = List(prefix_, 0, "", &s);  // default page size 100
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(all.counters_size(), 26);
  EXPECT_TRUE(all.next_page_token().empty());
  EXPECT_TRUE(std::is_sorted(all.counters().begin(), all.counters().end(),
                             [](const auto& a, const auto& b) { return a.key() < b.key(); }));
}

TEST_F(SemanticsTest, ListRejectsNegativePageSizeMalformedTokenAndOverlongPrefix) {
  grpc::Status s;
  List(prefix_, -1, "", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  List(prefix_, 10, "bad\x01token", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  List(prefix_, 10, "not-under-the-prefix", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  List(std::string(161, 'p'), 10, "", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

TEST_F(SemanticsTest, ListPageSizeAboveMaximumIsCappedAtOneThousand) {
  std::vector<std::pair<std::string, int64_t>> ops;
  for (int i = 0; i < 1001; ++i) {
    ops.emplace_back(Key(absl::StrFormat("k%04d", i)), 1);
    if (ops.size() == kMaxBatch) {
      ASSERT_TRUE(Batch(ops, nullptr).ok());
      ops.clear();
    }
  }
  ASSERT_TRUE(Batch(ops, nullptr).ok());
  grpc::Status s;
  counters::v1::ListResponse page = List(prefix_, 5000, "", &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(page.counters_size(), 1000);
  EXPECT_EQ(page.next_page_token(), Key("k0999"));
}

// ---- Set / CompareAndSet ----

TEST_F(SemanticsTest, SetReturnsPreviousValueOnlyWhenTheCounterExisted) {
  counters::v1::SetResponse resp;
  ASSERT_TRUE(Set(Key("s"), 5, &resp).ok());
  EXPECT_FALSE(resp.has_previous_value());
  ASSERT_TRUE(Set(Key("s"), -9, &resp).ok());
  ASSERT_TRUE(resp.has_previous_value());
  EXPECT_EQ(resp.previous_value(), 5);
  ASSERT_TRUE(Set(Key("zero"), 0, &resp).ok());
  ASSERT_TRUE(Set(Key("zero"), 1, &resp).ok());
  ASSERT_TRUE(resp.has_previous_value());  // 0 is a value, not absence
  EXPECT_EQ(resp.previous_value(), 0);
}

TEST_F(SemanticsTest, CompareAndSetTreatsMissingCounterAsZero) {
  auto cas = [&](const std::string& key, int64_t expected, int64_t value) {
    grpc::ClientContext ctx;
    counters::v1::CompareAndSetRequest req;
    req.set_key(key);
    req.set_expected(expected);
    req.set_value(value);
    counters::v1::CompareAndSetResponse resp;
    grpc::Status s = stub_->CompareAndSet(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  };
  counters::v1::CompareAndSetResponse r = cas(Key("c"), 1, 5);
  EXPECT_FALSE(r.applied());
  EXPECT_EQ(r.value(), 0);
  EXPECT_EQ(Get(Key("c"), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);  // not created
  r = cas(Key("c"), 0, 5);
  EXPECT_TRUE(r.applied());
  EXPECT_EQ(r.value(), 5);
  r = cas(Key("c"), 4, 7);
  EXPECT_FALSE(r.applied());
  EXPECT_EQ(r.value(), 5);
  r = cas(Key("c"), 5, 7);
  EXPECT_TRUE(r.applied());
  EXPECT_EQ(r.value(), 7);
}

// ---- Snapshot / GetStats ----

TEST_F(SemanticsTest, SnapshotReturnsIncreasingGenerationsThatCountTheCounters) {
  ASSERT_TRUE(Increment(Key("snap"), 1, nullptr).ok());
  auto snapshot = [&](counters::v1::SnapshotResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(60)));
    return stub_->Snapshot(&ctx, counters::v1::SnapshotRequest(), resp);
  };
  counters::v1::SnapshotResponse first, second;
  grpc::Status s = snapshot(&first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GE(first.generation(), 1u);
  EXPECT_GE(first.counters(), 1u);
  EXPECT_GT(first.bytes(), 0u);
  s = snapshot(&second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(second.generation(), first.generation());
  counters::v1::GetStatsResponse stats = Stats();
  EXPECT_GE(stats.last_snapshot_generation(), second.generation());
  EXPECT_GT(stats.last_snapshot_unix_seconds(), 0);
  EXPECT_GT(stats.last_snapshot_bytes(), 0u);
}

TEST_F(SemanticsTest, GetStatsReportsHandlersCapacityUsageAndServingPid) {
  ASSERT_TRUE(Increment(Key("st"), 1, nullptr).ok());
  counters::v1::GetStatsResponse stats = Stats();
  ASSERT_EQ(stats.handlers_size(), 2);
  std::vector<int> pids;
  uint64_t calls = 0;
  for (const auto& h : stats.handlers()) {
    EXPECT_GT(h.pid(), 0);
    pids.push_back(h.pid());
    calls += h.calls();
  }
  EXPECT_GE(calls, 1u);
  EXPECT_THAT(pids, ::testing::Contains(stats.served_by_pid()));
  EXPECT_EQ(stats.capacity(), 100000u);
  EXPECT_GE(stats.used(), 1u);
  EXPECT_LE(stats.used(), stats.capacity());
  EXPECT_EQ(stats.server_version(), countersd::kVersion);
}

TEST_F(SemanticsTest, GetStatsCountsErrorsOfTheServingHandler) {
  // Pin one connection, so both calls reach the same handler.
  counters::v1::GetStatsResponse before = Stats();
  ASSERT_EQ(Get(Key("missing"), nullptr).error_code(), grpc::StatusCode::NOT_FOUND);
  counters::v1::GetStatsResponse after = Stats();
  ASSERT_EQ(before.served_by_pid(), after.served_by_pid());
  auto errors_of = [](const counters::v1::GetStatsResponse& r, int pid) -> uint64_t {
    for (const auto& h : r.handlers()) {
      if (h.pid() == pid) return h.errors();
    }
    return 0;
  };
  EXPECT_GE(errors_of(after, after.served_by_pid()), errors_of(before, before.served_by_pid()) + 1);
}

// ---- Health (the generated grpc.health.v1 stub) and reflection (hand-encoded
// protobuf) ----

TEST_F(SemanticsTest, HealthServiceReportsServing) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials()));
  for (const char* service : {"", "counters.v1.CounterService"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health->Check(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << "service '" << service << "': " << s.error_message();
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING)
        << "service '" << service << "'";
  }
}

TEST_F(SemanticsTest, ReflectionListsTheCounterService) {
  auto channel = grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  auto step = [&cq]() {
    void* tag;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step());
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer req(&slice, 1);
  call->Write(req, reinterpret_cast<void*>(2));
  ASSERT_TRUE(step());
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(step());
  grpc::ByteBuffer resp;
  call->Read(&resp, reinterpret_cast<void*>(4));
  ASSERT_TRUE(step());
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(5)) {
  }
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(resp.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& sl : slices)
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_THAT(bytes, HasSubstr("counters.v1.CounterService"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// ---- A full table (its own small daemon) ----

TEST(FullTableTest, NewCountersFailResourceExhaustedWhileExistingOnesStillWork) {
  DaemonOptions options;
  options.handlers = 1;
  options.capacity = kSmallCapacity;
  auto d = Daemon::Start(options);
  ASSERT_TRUE(d.ok()) << d.status();
  auto stub = NewStub((*d)->address());
  auto inc = [&](const std::string& key) {
    grpc::ClientContext ctx;
    counters::v1::IncrementRequest req;
    req.set_key(key);
    counters::v1::IncrementResponse resp;
    return stub->Increment(&ctx, req, &resp);
  };
  int created = 0;
  grpc::Status s;
  for (int i = 0; i < 10 * static_cast<int>(kSmallCapacity); ++i) {
    s = inc(absl::StrCat("full/", i));
    if (!s.ok()) break;
    ++created;
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_GE(created, 1);
  EXPECT_LE(static_cast<uint64_t>(created), kSmallCapacity);
  EXPECT_TRUE(inc("full/0").ok());  // an existing counter still increments
  // Set and CompareAndSet of a new key are refused too; nothing was dropped.
  {
    grpc::ClientContext ctx;
    counters::v1::SetRequest req;
    req.set_key("full/new");
    counters::v1::SetResponse resp;
    EXPECT_EQ(stub->Set(&ctx, req, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Deleting frees room for a new counter.
  {
    grpc::ClientContext ctx;
    counters::v1::DeleteRequest req;
    req.set_key("full/0");
    counters::v1::DeleteResponse resp;
    ASSERT_TRUE(stub->Delete(&ctx, req, &resp).ok());
  }
  EXPECT_TRUE(inc("full/after-delete").ok());
}

}  // namespace
}  // namespace countersd::testing
