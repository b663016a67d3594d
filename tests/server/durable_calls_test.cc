// Durable writes through the handler's serving loop, in this process: a
// real gRPC server, the table, and a GroupCommit over a fault-injecting Sys,
// so that a sync fails when the test says. A durable Increment whose sync
// fails answers INTERNAL, is applied, and the next one is durable again;
// on an IncrementStream a durable message's answer waits for its sync and
// holds back the answers behind it, a failed sync turns that message's
// answer (only) into INTERNAL, and the stream goes on.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "counters/v1/counters.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "server/counter_service.h"
#include "server/group_commit.h"
#include "server/health_service.h"
#include "server/increment_stream.h"
#include "server/unary_call_loop.h"
#include "shared/stats_area.h"
#include "tests/shared/fault_injecting_sys.h"
#include "tests/shared/logged_adds.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using counters::v1::CounterService;
using counters::v1::IncrementRequest;
using counters::v1::IncrementResponse;
using counters::v1::IncrementStreamRequest;
using counters::v1::IncrementStreamResponse;

class DurableCalls : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    table_ = MustCreate(10000);
    ASSERT_NE(table_, nullptr);
    absl::StatusOr<StatsArea> stats = StatsArea::Create();
    ASSERT_TRUE(stats.ok()) << stats.status();
    stats_.emplace(*std::move(stats));
    service_ = std::make_unique<CounterServiceImpl>(table_.get(), 1000, nullptr, &*stats_, 0);
    health_ = std::make_unique<HealthServiceImpl>(4);
    auto gc = GroupCommit::Start(table_.get(), dir_, 0, &stats_->row(0), &sys_);
    ASSERT_TRUE(gc.ok()) << gc.status();
    group_commit_ = *std::move(gc);
    service_->EnableDurableWrites();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    builder.RegisterService(health_.get());
    cq_ = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    streams_ = std::make_unique<IncrementStreams>(service_.get(), group_commit_.get());
    loop_ = std::make_unique<UnaryCallLoop>(service_.get(), health_.get(), streams_.get(),
                                            cq_.get(), LoopHeartbeat{}, nullptr,
                                            group_commit_.get());
    serving_ = std::thread([this] { loop_->Run(); });
    stub_ = CounterService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                        grpc::InsecureChannelCredentials()));
  }

  // The handler's order (handler_process.cc): the server, then the log
  // (every durable call still waiting handed back), then the loop.
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown(GrpcDeadlineAfter(absl::Seconds(1)));
      group_commit_.reset();
      loop_->Stop();
      serving_.join();
      server_.reset();
    }
    TempDirTest::TearDown();
  }

  // The sum the log holds for `key`'s increments.
  int64_t Logged(const std::string& key) {
    absl::StatusOr<std::map<std::string, int64_t>> sums = LoggedAdds(dir_);
    EXPECT_TRUE(sums.ok()) << sums.status();
    if (!sums.ok()) return 0;
    auto it = sums->find(key);
    return it == sums->end() ? 0 : it->second;
  }

  grpc::Status DurableIncrement(const std::string& key, int64_t delta, int64_t* value) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    IncrementRequest req;
    req.set_key(key);
    req.set_delta(delta);
    req.mutable_options()->set_durable(true);
    IncrementResponse resp;
    grpc::Status st = stub_->Increment(&ctx, req, &resp);
    *value = resp.value();
    return st;
  }

  // The stats row's count of `method` calls answered `code`.
  uint64_t Calls(RpcMethod method, grpc::StatusCode code) {
    return stats_->row(0)
        .requests[static_cast<int>(method)][static_cast<int>(code)]
        .load(std::memory_order_relaxed);
  }

  FaultInjectingSys sys_;
  std::optional<StatsArea> stats_;
  std::unique_ptr<CounterTable> table_;
  std::unique_ptr<CounterServiceImpl> service_;
  std::unique_ptr<HealthServiceImpl> health_;
  std::unique_ptr<GroupCommit> group_commit_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<IncrementStreams> streams_;
  std::unique_ptr<UnaryCallLoop> loop_;
  std::thread serving_;
  std::unique_ptr<CounterService::Stub> stub_;
};

TEST_F(DurableCalls, AFailedSyncAnswersInternalTheWriteStaysAppliedAndTheNextIsDurable) {
  int64_t value = 0;
  ASSERT_TRUE(DurableIncrement("u", 1, &value).ok());
  EXPECT_EQ(Logged("u"), 1);
  sys_.FailNth(SysCall::kFsync, 1, EIO, ".wal");
  grpc::Status failed = DurableIncrement("u", 10, &value);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::INTERNAL) << failed.error_message();
  EXPECT_EQ(sys_.injected(), 1);
  EXPECT_EQ(*table_->Get("u"), 11) << "a failed sync must not undo the live write";
  ASSERT_TRUE(DurableIncrement("u", 100, &value).ok()) << "the log stayed broken";
  EXPECT_EQ(value, 111);
  // Counted as answered: the failed sync's write as INTERNAL, not OK.
  EXPECT_EQ(Calls(RpcMethod::kIncrement, grpc::StatusCode::OK), 2u);
  EXPECT_EQ(Calls(RpcMethod::kIncrement, grpc::StatusCode::INTERNAL), 1u);
  const HandlerStatsRow& row = stats_->row(0);
  EXPECT_EQ(row.log_sync_failures.load(), 1u);
  EXPECT_EQ(row.log_records_synced.load(), 2u);
  uint64_t turns = 0;
  for (const auto& b : row.log_syncs.buckets) turns += b.load();
  EXPECT_EQ(turns, 3u) << "one commit turn per lone write";
  // The failed segment is abandoned; the last write is on the new one (the
  // failed one's record may be on disk too: its sync failed, not its write).
  EXPECT_GE(Logged("u"), 101);
}

TEST_F(DurableCalls, AStreamsDurableMessageHoldsTheAnswersBehindItAndAFailedSyncFailsOnlyIt) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  auto rw = stub_->IncrementStream(&ctx);
  auto send = [&](uint64_t sequence, const std::string& key, bool durable) {
    IncrementStreamRequest req;
    req.set_sequence(sequence);
    auto* inc = req.add_increments();
    inc->set_key(key);
    inc->set_delta(1);
    req.mutable_options()->set_durable(durable);
    return rw->Write(req);
  };
  auto read = [&](uint64_t want) {
    IncrementStreamResponse resp;
    EXPECT_TRUE(rw->Read(&resp));
    EXPECT_EQ(resp.sequence(), want);
    return resp;
  };
  // 1: durable, synced: when its answer arrives, its record is in the log.
  ASSERT_TRUE(send(1, "d", true));
  IncrementStreamResponse a1 = read(1);
  EXPECT_EQ(a1.code(), 0) << a1.message();
  EXPECT_EQ(Logged("d"), 1);
  // 2: durable, its sync fails; 3: plain, sent right behind it, answered
  // after it, OK; 4: durable again, synced on the log's new segment.
  sys_.FailNth(SysCall::kFsync, 1, EIO, ".wal");
  ASSERT_TRUE(send(2, "d", true));
  ASSERT_TRUE(send(3, "p", false));
  IncrementStreamResponse a2 = read(2);
  EXPECT_EQ(a2.code(), static_cast<int>(grpc::StatusCode::INTERNAL)) << a2.message();
  EXPECT_EQ(a2.values_size(), 0);
  IncrementStreamResponse a3 = read(3);
  EXPECT_EQ(a3.code(), 0) << a3.message();
  ASSERT_TRUE(send(4, "d", true));
  IncrementStreamResponse a4 = read(4);
  EXPECT_EQ(a4.code(), 0) << a4.message();
  ASSERT_EQ(a4.values_size(), 1);
  EXPECT_EQ(a4.values(0), 3) << "the failed sync's message stays applied";
  EXPECT_EQ(sys_.injected(), 1);
  EXPECT_EQ(Calls(RpcMethod::kIncrementStream, grpc::StatusCode::INTERNAL), 1u);
  EXPECT_EQ(Calls(RpcMethod::kIncrementStream, grpc::StatusCode::OK), 3u);
  EXPECT_GE(Logged("d"), 2);
  EXPECT_EQ(Logged("p"), 0) << "a plain message is not logged";
  // Many durable messages in flight at once: each answered, in order.
  constexpr uint64_t kMore = 40;
  std::thread reader([&] {
    for (uint64_t q = 5; q < 5 + kMore; ++q) {
      IncrementStreamResponse r = read(q);
      EXPECT_EQ(r.code(), 0) << r.message();
    }
  });
  for (uint64_t q = 5; q < 5 + kMore; ++q) ASSERT_TRUE(send(q, "d", q % 3 != 0));
  reader.join();
  rw->WritesDone();
  grpc::Status closed = rw->Finish();
  EXPECT_TRUE(closed.ok()) << closed.error_message();
  EXPECT_EQ(*table_->Get("d"), static_cast<int64_t>(3 + kMore));
}

}  // namespace
}  // namespace countersd
