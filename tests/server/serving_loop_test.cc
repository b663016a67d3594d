// The handler's serving loop (UnaryCallLoop) and its async health service
// on a real gRPC server in this process, over a real table: the call pool
// stays under its bound during a burst of concurrent calls and shrinks back
// after it; Health.Watch's cap, its client cancellation, and drain;
// IncrementStream's bound on open streams (the ones beyond wait, then are
// served), and a client's cancel freeing its stream.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "server/counter_service.h"
#include "server/health_service.h"
#include "server/increment_stream.h"
#include "server/unary_call_loop.h"
#include "shared/monotonic_time.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr size_t kWatchCap = 3;

// Polls `done` until it holds or `timeout` passes.
template <typename F>
bool PollUntil(F done, absl::Duration timeout = absl::Seconds(20)) {
  absl::Time deadline = MonotonicNow() + timeout;
  while (!done()) {
    if (MonotonicNow() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class ServingLoopTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    table_ = MustCreate(100000);
    ASSERT_NE(table_, nullptr);
    service_ = std::make_unique<CounterServiceImpl>(table_.get(), 1000);
    health_ = std::make_unique<HealthServiceImpl>(kWatchCap);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    builder.RegisterService(health_.get());
    cq_ = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    streams_ = std::make_unique<IncrementStreams>(service_.get(), nullptr);
    loop_ = std::make_unique<UnaryCallLoop>(service_.get(), health_.get(), streams_.get(),
                                            cq_.get());
    serving_ = std::thread([this] { loop_->Run(); });
  }

  void TearDown() override {
    if (server_ != nullptr) {
      health_->SetNotServing();
      server_->Shutdown(GrpcDeadlineAfter(absl::Seconds(1)));
      loop_->Stop();
      serving_.join();
      server_.reset();
    }
    TempDirTest::TearDown();
  }

  std::shared_ptr<grpc::Channel> OwnChannel() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                     grpc::InsecureChannelCredentials(), args);
  }

  // An open Watch whose first message has been read.
  struct OpenWatch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;
    HealthCheckResponse first;
    bool got_first = false;
  };
  std::unique_ptr<OpenWatch> Watch(Health::Stub* stub, const std::string& service) {
    auto w = std::make_unique<OpenWatch>();
    w->ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(60)));
    HealthCheckRequest req;
    req.set_service(service);
    w->reader = stub->Watch(&w->ctx, req);
    w->got_first = w->reader->Read(&w->first);
    return w;
  }

  int port_ = 0;
  std::unique_ptr<CounterTable> table_;
  std::unique_ptr<CounterServiceImpl> service_;
  std::unique_ptr<HealthServiceImpl> health_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<IncrementStreams> streams_;
  std::unique_ptr<UnaryCallLoop> loop_;
  std::thread serving_;
};

// A burst of concurrent Increments over several connections: every call
// succeeds, the pool never passes its bound, and once the burst is over it
// gives its calls back, down to what it keeps idle.
TEST_F(ServingLoopTest, CallPoolStaysUnderItsBoundAndShrinksAfterABurst) {
  constexpr int kChannels = 8;
  constexpr int kCallsPerChannel = 500;
  std::vector<std::unique_ptr<counters::v1::CounterService::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) stubs.push_back(counters::v1::CounterService::NewStub(OwnChannel()));
  struct Pending {
    grpc::ClientContext ctx;
    counters::v1::IncrementResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<counters::v1::IncrementResponse>> rpc;
  };
  // At rest every method has just its posted calls (wait until the loop
  // has posted them all: it starts on its own thread).
  ASSERT_TRUE(PollUntil([&] { return loop_->calls() >= UnaryCallLoop::PostedCalls(); }));
  const size_t at_rest = loop_->calls();
  ASSERT_EQ(at_rest, UnaryCallLoop::PostedCalls());
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Pending>> calls;
  for (int round = 0; round < 3; ++round) {
    calls.clear();
    for (int c = 0; c < kChannels; ++c) {
      for (int i = 0; i < kCallsPerChannel; ++i) {
        auto p = std::make_unique<Pending>();
        p->ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(60)));
        counters::v1::IncrementRequest req;
        req.set_key(absl::StrCat("burst/", i % 50));
        p->rpc = stubs[c]->AsyncIncrement(&p->ctx, req, &cq);
        p->rpc->Finish(&p->resp, &p->status, p.get());
        calls.push_back(std::move(p));
      }
    }
    for (size_t n = 0; n < calls.size(); ++n) {
      void* tag;
      bool ok;
      ASSERT_TRUE(cq.Next(&tag, &ok));
      ASSERT_TRUE(ok);
      EXPECT_TRUE(static_cast<Pending*>(tag)->status.ok())
          << static_cast<Pending*>(tag)->status.error_message();
    }
  }
  EXPECT_EQ(*table_->Get("burst/0"), 3 * kChannels * kCallsPerChannel / 50);
  // The burst outran the posted calls, so Increment's pool grew past what it
  // may keep idle (else this test would not test the shrink)...
  const size_t idle_bound = at_rest + UnaryCallLoop::MaxFreeCallsPerMethod();
  EXPECT_GT(loop_->peak_calls(), idle_bound);
  // ...but never past its bound...
  EXPECT_LE(loop_->peak_calls(), UnaryCallLoop::MaxCalls());
  // ...and it shrinks back once the replies are written.
  EXPECT_TRUE(PollUntil([&] { return loop_->calls() <= idle_bound; }))
      << "calls " << loop_->calls() << ", at rest " << at_rest << ", peak "
      << loop_->peak_calls();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(ServingLoopTest, HealthCheckReportsServingAndNotFoundForAnUnknownService) {
  auto stub = Health::NewStub(OwnChannel());
  HealthCheckRequest req;
  HealthCheckResponse resp;
  for (const std::string service : {"", "counters.v1.CounterService"}) {
    grpc::ClientContext ctx;
    req.set_service(service);
    ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  }
  grpc::ClientContext ctx;
  req.set_service("no.such.Service");
  EXPECT_EQ(stub->Check(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

// The cap: a Watch beyond it ends at once with RESOURCE_EXHAUSTED; a watch
// the client cancels frees its place.
TEST_F(ServingLoopTest, WatchBeyondTheCapIsResourceExhaustedUntilAWatchIsCancelled) {
  auto stub = Health::NewStub(OwnChannel());
  std::vector<std::unique_ptr<OpenWatch>> open;
  for (size_t i = 0; i < kWatchCap; ++i) {
    open.push_back(Watch(stub.get(), ""));
    ASSERT_TRUE(open.back()->got_first);
    EXPECT_EQ(open.back()->first.status(), HealthCheckResponse::SERVING);
  }
  EXPECT_EQ(health_->watchers(), kWatchCap);
  auto over = Watch(stub.get(), "");
  EXPECT_FALSE(over->got_first);
  EXPECT_EQ(over->reader->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  open.front()->ctx.TryCancel();
  EXPECT_EQ(open.front()->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  open.erase(open.begin());
  ASSERT_TRUE(PollUntil([&] { return health_->watchers() == kWatchCap - 1; }));
  auto again = Watch(stub.get(), "");
  ASSERT_TRUE(again->got_first);
  EXPECT_EQ(again->first.status(), HealthCheckResponse::SERVING);
}

// Drain: a watch of a known service gets NOT_SERVING and ends OK; one of an
// unknown service got SERVICE_UNKNOWN first and ends OK too; Check says
// NOT_SERVING.
TEST_F(ServingLoopTest, NotServingEndsEveryWatchOk) {
  auto stub = Health::NewStub(OwnChannel());
  auto known = Watch(stub.get(), "counters.v1.CounterService");
  auto unknown = Watch(stub.get(), "no.such.Service");
  ASSERT_TRUE(known->got_first);
  ASSERT_TRUE(unknown->got_first);
  EXPECT_EQ(known->first.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(unknown->first.status(), HealthCheckResponse::SERVICE_UNKNOWN);

  health_->SetNotServing();
  HealthCheckResponse next;
  ASSERT_TRUE(known->reader->Read(&next));
  EXPECT_EQ(next.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(known->reader->Read(&next));
  EXPECT_TRUE(known->reader->Finish().ok());
  EXPECT_FALSE(unknown->reader->Read(&next));
  EXPECT_TRUE(unknown->reader->Finish().ok());
  EXPECT_TRUE(PollUntil([&] { return health_->watchers() == 0; }));

  grpc::ClientContext ctx;
  HealthCheckRequest req;
  HealthCheckResponse resp;
  ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  // A watch that starts now gets NOT_SERVING and ends.
  auto late = Watch(stub.get(), "");
  ASSERT_TRUE(late->got_first);
  EXPECT_EQ(late->first.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(late->reader->Read(&next));
  EXPECT_TRUE(late->reader->Finish().ok());
}

using counters::v1::IncrementStreamRequest;
using counters::v1::IncrementStreamResponse;

struct OpenStream {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<IncrementStreamRequest, IncrementStreamResponse>> rw;
};

// kMaxStreams + 8 streams on one connection, each with one message sent:
// the first kMaxStreams are answered, the rest wait in gRPC; as the first
// ones end the rest are served, and every object is given back.
TEST_F(ServingLoopTest, StreamsBeyondTheBoundWaitThenAreServed) {
  auto stub = counters::v1::CounterService::NewStub(OwnChannel());
  constexpr int kExtra = 8;
  constexpr int kTotal = IncrementStreams::kMaxStreams + kExtra;
  std::vector<std::unique_ptr<OpenStream>> streams;
  for (int i = 0; i < kTotal; ++i) {
    auto st = std::make_unique<OpenStream>();
    st->ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(120)));
    st->rw = stub->IncrementStream(&st->ctx);
    IncrementStreamRequest req;
    req.set_sequence(i);
    req.add_increments()->set_key("bound/k");
    ASSERT_TRUE(st->rw->Write(req));
    streams.push_back(std::move(st));
  }
  IncrementStreamResponse answer;
  for (int i = 0; i < IncrementStreams::kMaxStreams; ++i) {
    ASSERT_TRUE(streams[i]->rw->Read(&answer)) << "stream " << i;
    EXPECT_EQ(answer.code(), 0) << answer.message();
  }
  EXPECT_EQ(streams_->open_streams(), static_cast<size_t>(IncrementStreams::kMaxStreams));
  EXPECT_EQ(*table_->Get("bound/k"), IncrementStreams::kMaxStreams);  // the rest wait
  for (int i = 0; i < kTotal; ++i) {
    if (i >= IncrementStreams::kMaxStreams) {  // served once earlier ones ended
      ASSERT_TRUE(streams[i]->rw->Read(&answer)) << "stream " << i;
      EXPECT_EQ(answer.sequence(), static_cast<uint64_t>(i));
    }
    streams[i]->rw->WritesDone();
    EXPECT_FALSE(streams[i]->rw->Read(&answer));
    grpc::Status s = streams[i]->rw->Finish();
    EXPECT_TRUE(s.ok()) << "stream " << i << ": " << s.error_message();
  }
  EXPECT_EQ(*table_->Get("bound/k"), kTotal);
  EXPECT_TRUE(PollUntil([&] { return streams_->open_streams() == 0; }));
}

// A stream the client cancels while the server waits for its next message
// ends, and its place is free.
TEST_F(ServingLoopTest, AStreamTheClientCancelsEnds) {
  auto stub = counters::v1::CounterService::NewStub(OwnChannel());
  OpenStream st;
  st.rw = stub->IncrementStream(&st.ctx);
  IncrementStreamRequest req;
  req.set_sequence(1);
  req.add_increments()->set_key("cancel/k");
  ASSERT_TRUE(st.rw->Write(req));
  IncrementStreamResponse answer;
  ASSERT_TRUE(st.rw->Read(&answer));
  EXPECT_EQ(streams_->open_streams(), 1u);
  st.ctx.TryCancel();
  EXPECT_EQ(st.rw->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(PollUntil([&] { return streams_->open_streams() == 0; }));
}

}  // namespace
}  // namespace countersd
