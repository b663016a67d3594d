// countersd::local::LocalTable has the RPCs' semantics and status codes:
// each case runs once over gRPC on keys under "r/" and once attached on the
// same keys under "l/", and the two must agree on the code, the message
// (with the prefix swapped) and the values.
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/local/local_table.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using local::LocalTable;
namespace pb = counters::v1;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

class LocalSemanticsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    DaemonOptions o;
    o.handlers = 1;
    o.capacity = 64;
    auto d = Daemon::Start(o);
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = d->release();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(daemon_, nullptr);
    auto t = LocalTable::Attach(daemon_->data_dir());
    ASSERT_TRUE(t.ok()) << t.status();
    local_ = *std::move(t);
    stub_ = NewStub(daemon_->address());
  }

  // The outcome of one call, comparable across the two paths.
  struct Outcome {
    absl::StatusCode code;
    std::string message;  // with the path's key prefix replaced by "<p>/"
    std::vector<int64_t> values;
  };
  static Outcome Of(const grpc::Status& s, std::vector<int64_t> values) {
    return {static_cast<absl::StatusCode>(s.error_code()),
            absl::StrReplaceAll(s.error_message(), {{"r/", "<p>/"}}),
            s.ok() ? std::move(values) : std::vector<int64_t>{}};
  }
  static Outcome Of(const absl::Status& s, std::vector<int64_t> values) {
    return {s.code(), absl::StrReplaceAll(s.message(), {{"l/", "<p>/"}}),
            s.ok() ? std::move(values) : std::vector<int64_t>{}};
  }
  static void ExpectSame(const Outcome& rpc, const Outcome& loc, const std::string& what) {
    EXPECT_EQ(rpc.code, loc.code) << what << ": rpc \"" << rpc.message << "\", local \""
                                  << loc.message << "\"";
    EXPECT_EQ(rpc.message, loc.message) << what;
    EXPECT_EQ(rpc.values, loc.values) << what;
  }
  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    return c;
  }

  void Increment(const std::string& key, int64_t delta) {
    pb::IncrementRequest req;
    req.set_key("r/" + key);
    req.set_delta(delta);
    pb::IncrementResponse resp;
    const grpc::Status s = stub_->Increment(Ctx().get(), req, &resp);
    Outcome rpc = Of(s, {resp.value()});
    absl::StatusOr<int64_t> v = local_->Increment("l/" + key, delta);
    ExpectSame(rpc, Of(v.status(), {v.value_or(0)}), "Increment " + key);
  }
  // Keys given whole (not prefixed), for the bad ones.
  void IncrementRaw(const std::string& key) {
    pb::IncrementRequest req;
    req.set_key(key);
    pb::IncrementResponse resp;
    const grpc::Status s = stub_->Increment(Ctx().get(), req, &resp);
    Outcome rpc = Of(s, {resp.value()});
    absl::StatusOr<int64_t> v = local_->Increment(key, 1);
    ExpectSame(rpc, Of(v.status(), {v.value_or(0)}), "Increment of a bad key");
  }
  void Batch(const std::vector<std::pair<std::string, int64_t>>& ops, bool compare_message = true) {
    pb::IncrementBatchRequest req;
    std::vector<std::string> keys;
    for (const auto& [k, d] : ops) {
      pb::IncrementRequest* r = req.add_increments();
      r->set_key(k.empty() ? "" : "r/" + k);
      r->set_delta(d);
      keys.push_back(k.empty() ? "" : "l/" + k);
    }
    pb::IncrementBatchResponse resp;
    const grpc::Status s = stub_->IncrementBatch(Ctx().get(), req, &resp);
    Outcome rpc = Of(s, {resp.values().begin(), resp.values().end()});
    std::vector<LocalTable::KeyDelta> local_ops;
    for (size_t i = 0; i < ops.size(); ++i) local_ops.push_back({keys[i], ops[i].second});
    absl::StatusOr<std::vector<int64_t>> v = local_->IncrementBatch(local_ops);
    Outcome loc = Of(v.status(), v.value_or(std::vector<int64_t>{}));
    if (!compare_message) loc.message = rpc.message;
    ExpectSame(rpc, loc, "IncrementBatch");
  }
  void Get(const std::string& key) {
    pb::GetRequest req;
    req.set_key("r/" + key);
    pb::GetResponse resp;
    const grpc::Status s = stub_->Get(Ctx().get(), req, &resp);
    Outcome rpc = Of(s, {resp.value()});
    absl::StatusOr<int64_t> v = local_->Get("l/" + key);
    ExpectSame(rpc, Of(v.status(), {v.value_or(0)}), "Get " + key);
  }

  static Daemon* daemon_;
  std::unique_ptr<LocalTable> local_;
  std::unique_ptr<pb::CounterService::Stub> stub_;
};
Daemon* LocalSemanticsTest::daemon_ = nullptr;

TEST_F(LocalSemanticsTest, IncrementAndGet) {
  Get("a");  // NOT_FOUND
  Increment("a", 5);
  Increment("a", -7);
  Get("a");
  Increment("big", kMax);
  Increment("big", 1);  // OUT_OF_RANGE, unchanged
  Get("big");
}

TEST_F(LocalSemanticsTest, BadKeys) {
  IncrementRaw("");
  IncrementRaw(std::string(161, 'k'));
  IncrementRaw("ctl\x01key");
  // Not UTF-8: gRPC refuses it as a string field before the server sees it;
  // attached, the key rules do.
  absl::StatusOr<int64_t> v = local_->Increment("bad\xff", 1);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << v.status();
}

TEST_F(LocalSemanticsTest, AtomicBatches) {
  Batch({{"b1", 1}, {"b2", 2}, {"b1", 3}});
  Batch({{"b1", 1}, {"", 1}});                 // the bad key's index
  Batch({{"b1", 1}, {"b2", kMax}});            // overflow: nothing applied
  Get("b1");
  Batch({});                                   // empty
  std::vector<std::pair<std::string, int64_t>> too_many(1001, {"b3", 1});
  Batch(too_many, /*compare_message=*/false);  // the server names its --max-batch
  Get("b3");
}

TEST_F(LocalSemanticsTest, SetCasDeleteAndBatchGet) {
  pb::SetRequest sreq;
  sreq.set_key("r/s");
  sreq.set_value(10);
  pb::SetResponse sresp;
  ASSERT_TRUE(stub_->Set(Ctx().get(), sreq, &sresp).ok());
  EXPECT_FALSE(sresp.has_previous_value());
  EXPECT_EQ(*local_->Set("l/s", 10), std::nullopt);
  EXPECT_EQ(*local_->Set("l/s", 11), std::optional<int64_t>(10));

  pb::CompareAndSetRequest creq;
  creq.set_key("r/missing-cas");
  creq.set_expected(0);
  creq.set_value(4);
  pb::CompareAndSetResponse cresp;
  ASSERT_TRUE(stub_->CompareAndSet(Ctx().get(), creq, &cresp).ok());
  auto cas = local_->CompareAndSet("l/missing-cas", 0, 4);  // a missing counter counts as 0
  ASSERT_TRUE(cas.ok());
  EXPECT_EQ(cas->applied, cresp.applied());
  EXPECT_EQ(cas->value, cresp.value());
  cas = local_->CompareAndSet("l/missing-cas", 3, 9);
  ASSERT_TRUE(cas.ok());
  EXPECT_FALSE(cas->applied);
  EXPECT_EQ(cas->value, 4);

  pb::DeleteRequest dreq;
  dreq.set_key("r/never");
  pb::DeleteResponse dresp;
  Outcome rpc = Of(stub_->Delete(Ctx().get(), dreq, &dresp), {});
  absl::StatusOr<int64_t> del = local_->Delete("l/never");
  ExpectSame(rpc, Of(del.status(), {}), "Delete of a missing counter");
  EXPECT_EQ(*local_->Delete("l/s"), 11);

  pb::BatchGetRequest breq;
  breq.add_keys("r/missing-cas");
  breq.add_keys("r/nothing");
  breq.add_keys("");
  pb::BatchGetResponse bresp;
  rpc = Of(stub_->BatchGet(Ctx().get(), breq, &bresp), {});
  const std::string_view keys[] = {"l/missing-cas", "l/nothing", ""};
  auto got = local_->BatchGet(keys);
  ExpectSame(rpc, Of(got.status(), {}), "BatchGet with a bad key");
  const std::string_view good[] = {"l/missing-cas", "l/nothing"};
  got = local_->BatchGet(good);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)[0], std::optional<int64_t>(4));
  EXPECT_EQ((*got)[1], std::nullopt);
}

TEST_F(LocalSemanticsTest, AFullTable) {
  // Capacity 64: fill it from here, then both paths are refused alike.
  for (int i = 0; local_->Increment(absl::StrCat("l/fill", i), 1).ok(); ++i) {
    ASSERT_LT(i, 64);
  }
  Increment("one-more", 1);
}

}  // namespace
}  // namespace countersd::testing
