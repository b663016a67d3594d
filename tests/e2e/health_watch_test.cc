// Health.Watch on the real daemon: watches hold no thread of the handler
// (1,000 open streams add at most a handful of threads to its process), and
// a drain ends every one of them with NOT_SERVING and OK.
#include <dirent.h>
#include <sys/wait.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

int ThreadsOf(pid_t pid) {
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/task").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

TEST(HealthWatchTest, AThousandWatchesAddAHandfulOfThreadsAndDrainEndsThem) {
  constexpr int kChannels = 20;
  constexpr int kWatchesPerChannel = 50;  // under any per-connection stream cap
  constexpr int kWatches = kChannels * kWatchesPerChannel;
  constexpr int kHandful = 5;
  DaemonOptions options;
  options.handlers = 1;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();

  counters::v1::GetStatsResponse stats;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(NewStub(address)->GetStats(&ctx, {}, &stats).ok());
  }
  const pid_t handler = stats.served_by_pid();
  const int threads_before = ThreadsOf(handler);
  ASSERT_GT(threads_before, 0);

  struct Watch {
    grpc::ClientContext ctx;
    HealthCheckResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncReader<HealthCheckResponse>> reader;
    int step = 0;  // 0 started, 1 first read, 2 second read, 3 finished
  };
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Health::Stub>> stubs;
  std::vector<std::unique_ptr<Watch>> watches;
  for (int c = 0; c < kChannels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(Health::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args)));
    for (int i = 0; i < kWatchesPerChannel; ++i) {
      auto w = std::make_unique<Watch>();
      w->ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(120)));
      HealthCheckRequest req;
      w->reader = stubs.back()->AsyncWatch(&w->ctx, req, &cq, w.get());
      watches.push_back(std::move(w));
    }
  }
  // Each watch: started, then its first message (SERVING).
  int serving = 0;
  auto next = [&](Watch** w, bool* ok) {
    void* tag;
    const auto deadline = GrpcDeadlineAfter(absl::Seconds(60));
    if (cq.AsyncNext(&tag, ok, deadline) != grpc::CompletionQueue::GOT_EVENT) return false;
    *w = static_cast<Watch*>(tag);
    return true;
  };
  for (int events = 0; events < 2 * kWatches; ++events) {
    Watch* w;
    bool ok;
    ASSERT_TRUE(next(&w, &ok)) << "timed out after " << serving << " SERVING";
    ASSERT_TRUE(ok) << "watch step " << w->step;
    if (w->step == 0) {
      w->step = 1;
      w->reader->Read(&w->resp, w);
    } else {
      EXPECT_EQ(w->resp.status(), HealthCheckResponse::SERVING);
      ++serving;
      w->step = 2;
    }
  }
  ASSERT_EQ(serving, kWatches);
  const int threads_with_watches = ThreadsOf(handler);
  std::cout << "handler threads: " << threads_before << " before, " << threads_with_watches
            << " with " << kWatches << " watches open\n";
  EXPECT_LE(threads_with_watches, threads_before + kHandful)
      << threads_before << " threads before " << kWatches << " watches";

  // Drain: every watch gets NOT_SERVING, then ends OK.
  for (auto& w : watches) w->reader->Read(&w->resp, w.get());
  ASSERT_EQ(kill((*daemon)->pid(), SIGTERM), 0);
  int not_serving = 0;
  int ended_ok = 0;
  for (int events = 0; events < 2 * kWatches; ++events) {
    Watch* w;
    bool ok;
    ASSERT_TRUE(next(&w, &ok)) << not_serving << " NOT_SERVING, " << ended_ok << " ended OK";
    if (w->step == 2) {
      EXPECT_TRUE(ok) << "a watch ended without NOT_SERVING";
      if (ok) {
        EXPECT_EQ(w->resp.status(), HealthCheckResponse::NOT_SERVING);
        ++not_serving;
      }
      w->step = 3;
      w->reader->Finish(&w->status, w);
    } else {
      EXPECT_TRUE(w->status.ok()) << w->status.error_code() << " " << w->status.error_message();
      ended_ok += w->status.ok();
    }
  }
  EXPECT_EQ(not_serving, kWatches);
  EXPECT_EQ(ended_ok, kWatches);
  absl::StatusOr<int> exit = (*daemon)->Wait(absl::Seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << (*daemon)->log();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace countersd::testing
