// List does not starve other clients: four clients listing a 1,000,000-
// capacity table page by page, over and over, leave the increments of other
// clients at >= 50% of their rate without them. One handler, so every call
// shares its one serving thread. The rates are measured in the same run,
// in interleaved windows (without, with, without, ...), so that a loaded
// machine slows both alike.
//
// DISABLED: it fails today. With the sorted key index a page of 100 costs
// ~80 us of the serving thread and a page of 1000 ~400 us (a full-table
// scan, what every page cost before, ~6.7 ms at this capacity), but four
// closed-loop listers still take most turns of the one serving thread:
// measured ratio 0.23 with pages of 100, 0.10 with pages of 1000. What is
// missing (issue 11, fault 6): keep List from taking more than a bounded
// share of the serving thread (e.g. answer List calls only when no other
// call is waiting, or at most one page per N other calls), and resume a
// listing's merge from a cached cursor instead of re-seeking every region.
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

TEST(ListFairnessTest, DISABLED_FourListingClientsLeaveIncrementsAtHalfTheirRateOrMore) {
  constexpr int kKeys = 20000;
  constexpr int kIncrementers = 4;
  constexpr int kListers = 4;
  constexpr int kWindows = 6;  // each: one window without listers, one with
  const absl::Duration kWindow = absl::Milliseconds(400);
  DaemonOptions options;
  options.handlers = 1;
  options.capacity = 1000000;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();
  {
    auto stub = NewStub(address);
    for (int base = 0; base < kKeys; base += 1000) {
      counters::v1::IncrementBatchRequest req;
      for (int i = base; i < base + 1000; ++i) req.add_increments()->set_key(absl::StrCat("k/", i));
      counters::v1::IncrementBatchResponse resp;
      grpc::ClientContext ctx;
      ASSERT_TRUE(stub->IncrementBatch(&ctx, req, &resp).ok());
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<bool> listing{false};
  std::atomic<uint64_t> increments{0};
  std::atomic<uint64_t> pages{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kIncrementers; ++i) {
    threads.emplace_back([&, i] {
      auto stub = NewStubOnOwnConnection(address);
      counters::v1::IncrementRequest req;
      req.set_key(absl::StrCat("k/", i));
      counters::v1::IncrementResponse resp;
      while (!stop.load()) {
        grpc::ClientContext ctx;
        if (stub->Increment(&ctx, req, &resp).ok()) {
          increments.fetch_add(1);
        } else {
          errors.fetch_add(1);
        }
      }
    });
  }
  for (int i = 0; i < kListers; ++i) {
    threads.emplace_back([&] {
      auto stub = NewStubOnOwnConnection(address);
      std::string token;
      while (!stop.load()) {
        if (!listing.load()) {
          std::this_thread::yield();
          continue;
        }
        counters::v1::ListRequest req;
        req.set_page_size(100);
        req.set_page_token(token);
        counters::v1::ListResponse resp;
        grpc::ClientContext ctx;
        if (!stub->List(&ctx, req, &resp).ok()) {
          errors.fetch_add(1);
          continue;
        }
        pages.fetch_add(1);
        token = resp.next_page_token();  // "" after the last page: start over
      }
    });
  }
  uint64_t without = 0;
  uint64_t with = 0;
  auto window = [&](bool listers) {
    listing.store(listers);
    absl::SleepFor(absl::Milliseconds(50));  // settle: not a synchronisation
    uint64_t before = increments.load();
    absl::SleepFor(kWindow);  // the measured window itself
    return increments.load() - before;
  };
  for (int w = 0; w < kWindows; ++w) {
    without += window(false);
    with += window(true);
  }
  stop.store(true);
  listing.store(false);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(pages.load(), 0u);
  const double ratio = without == 0 ? 0 : static_cast<double>(with) / without;
  std::cout << "increments: " << without << " without listers, " << with << " with "
            << kListers << " listers (" << pages.load() << " pages of 1000): ratio " << ratio
            << "\n";
  EXPECT_GE(ratio, 0.5);
}

}  // namespace
}  // namespace countersd::testing
