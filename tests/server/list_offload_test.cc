// List off the serving thread: LowPriorityCalls (its thread's priority, the
// order of its calls, Stop), and a real gRPC server whose UnaryCallLoop hands
// List to it: a List waiting for that thread holds up no Increment.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "server/counter_service.h"
#include "server/low_priority_calls.h"
#include "server/unary_call_loop.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

TEST(LowPriorityCallsTest, RunsCallsInOrderOnItsOwnThreadAtALowerPriority) {
  errno = 0;
  const int base = getpriority(PRIO_PROCESS, gettid());
  ASSERT_EQ(errno, 0);
  if (base >= LowPriorityCalls::kNice) GTEST_SKIP() << "the test runs at the lowest priority";
  LowPriorityCalls calls;
  EXPECT_EQ(calls.nice(), LowPriorityCalls::kNice);
  std::vector<int> order;  // written by the calls' thread only, read after Stop
  std::vector<pid_t> tids;
  for (int i = 0; i < 5; ++i) {
    calls.Submit([&order, &tids, i] {
      order.push_back(i);
      tids.push_back(gettid());
    });
  }
  calls.Stop();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  for (pid_t tid : tids) EXPECT_NE(tid, gettid());
  // The test thread's own priority is untouched (setpriority on the tid).
  EXPECT_EQ(getpriority(PRIO_PROCESS, gettid()), base);
}

TEST(LowPriorityCallsTest, StopRunsWhatIsQueuedAndLaterCallsRunOnTheCaller) {
  LowPriorityCalls calls;
  absl::Notification release;
  int ran = 0;  // the calls run one at a time, in order
  calls.Submit([&] { release.WaitForNotification(); });
  for (int i = 0; i < 3; ++i) calls.Submit([&] { ++ran; });
  std::thread stopper([&] { calls.Stop(); });
  release.Notify();
  stopper.join();
  EXPECT_EQ(ran, 3);
  pid_t ran_on = 0;
  calls.Submit([&] { ran_on = gettid(); });
  EXPECT_EQ(ran_on, gettid());
}

class ListOffloadTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    table_ = MustCreate(100000);
    ASSERT_NE(table_, nullptr);
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(table_->Increment(absl::StrCat("k/", i), i).ok());
    service_ = std::make_unique<CounterServiceImpl>(table_.get(), 1000);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    cq_ = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    loop_ = std::make_unique<UnaryCallLoop>(service_.get(), nullptr, nullptr, cq_.get(),
                                            LoopHeartbeat{}, &list_calls_);
    serving_ = std::thread([this] { loop_->Run(); });
  }

  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown(GrpcDeadlineAfter(absl::Seconds(1)));
      list_calls_.Stop();
      loop_->Stop();
      serving_.join();
      server_.reset();
    }
    TempDirTest::TearDown();
  }

  std::unique_ptr<counters::v1::CounterService::Stub> Stub() {
    return counters::v1::CounterService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  }

  int port_ = 0;
  std::unique_ptr<CounterTable> table_;
  std::unique_ptr<CounterServiceImpl> service_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<grpc::Server> server_;
  LowPriorityCalls list_calls_;
  std::unique_ptr<UnaryCallLoop> loop_;
  std::thread serving_;
};

// The List thread is held by a call of the test's; a List sent meanwhile
// waits for it, and Increments are answered all the while (on the serving
// thread). Released, the List is answered with its page. Were List answered
// inline on the serving thread, it would be answered before the release.
TEST_F(ListOffloadTest, AListWaitingForItsThreadHoldsUpNoIncrement) {
  absl::Notification held;
  absl::Notification release;
  list_calls_.Submit([&] {
    held.Notify();
    release.WaitForNotification();
  });
  held.WaitForNotification();
  auto stub = Stub();
  grpc::CompletionQueue client_cq;
  grpc::ClientContext list_ctx;
  list_ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(60)));
  counters::v1::ListRequest list_req;
  list_req.set_page_size(10);
  counters::v1::ListResponse list_resp;
  grpc::Status list_status;
  auto rpc = stub->AsyncList(&list_ctx, list_req, &client_cq);
  rpc->Finish(&list_resp, &list_status, &list_ctx);
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(20)));
    counters::v1::IncrementRequest req;
    req.set_key("other");
    counters::v1::IncrementResponse resp;
    ASSERT_TRUE(stub->Increment(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.value(), i + 1);
  }
  void* tag = nullptr;
  bool ok = false;
  EXPECT_EQ(client_cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now()),
            grpc::CompletionQueue::TIMEOUT)
      << "the List was answered while its thread was held";
  release.Notify();
  ASSERT_TRUE(client_cq.Next(&tag, &ok));
  EXPECT_EQ(tag, &list_ctx);
  ASSERT_TRUE(list_status.ok()) << list_status.error_message();
  ASSERT_EQ(list_resp.counters_size(), 10);
  EXPECT_EQ(list_resp.counters(0).key(), "k/0");
  EXPECT_EQ(list_resp.next_page_token(), list_resp.counters(9).key());
}

}  // namespace
}  // namespace countersd
