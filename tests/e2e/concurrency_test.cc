// Many client processes against one daemon: exact totals, and the load
// spreads over more than one handler.
#include <algorithm>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;

constexpr int kClients = 8;
constexpr int kIncrementsPerKey = 5000;
constexpr int64_t kOwnDelta = 3;

struct ClientOutcome {
  absl::StatusOr<CommandResult> result = absl::UnknownError("not run");
  std::string values_path;
};

TEST(ConcurrencyTest, EightClientProcessesGetExactTotalsSpreadOverHandlers) {
  DaemonOptions options;
  options.handlers = 2;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();
  ScopedTempDir out_dir;

  std::vector<ClientOutcome> outcomes(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    outcomes[i].values_path = absl::StrCat(out_dir.path(), "/values-", i);
    threads.emplace_back([&, i] {
      outcomes[i].result = RunCommand(
          {LoadClientPath(), absl::StrCat("--address=", address), "--shared_key=conc/shared",
           absl::StrCat("--own_key=conc/own-", i), absl::StrCat("--own_delta=", kOwnDelta),
           absl::StrCat("--count=", kIncrementsPerKey), "--calls_per_channel=500",
           absl::StrCat("--values_out=", outcomes[i].values_path)},
          absl::Minutes(3));
    });
  }
  for (std::thread& t : threads) t.join();

  // Every call was acknowledged (nothing failed), and each returned value of
  // the shared key is unique: together exactly 1..N.
  std::vector<int64_t> shared_values;
  for (int i = 0; i < kClients; ++i) {
    const auto& r = outcomes[i].result;
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->err;
    EXPECT_THAT(r->out,
                ::testing::HasSubstr(absl::StrCat("acked_shared=", kIncrementsPerKey,
                                                  " acked_own=", kIncrementsPerKey, " failed=0")))
        << r->err;
    std::ifstream in(outcomes[i].values_path);
    for (int64_t v; in >> v;) shared_values.push_back(v);
  }
  const int64_t total = int64_t{kClients} * kIncrementsPerKey;
  ASSERT_EQ(shared_values.size(), static_cast<size_t>(total));
  std::sort(shared_values.begin(), shared_values.end());
  EXPECT_EQ(shared_values.front(), 1);
  EXPECT_EQ(shared_values.back(), total);
  EXPECT_EQ(std::adjacent_find(shared_values.begin(), shared_values.end()), shared_values.end())
      << "two increments returned the same value";

  auto stub = NewStub(address);
  EXPECT_EQ(CounterValue(stub.get(), "conc/shared"), total);
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(CounterValue(stub.get(), absl::StrCat("conc/own-", i)), kIncrementsPerKey * kOwnDelta);
  }

  grpc::ClientContext ctx;
  counters::v1::GetStatsResponse stats;
  ASSERT_TRUE(stub->GetStats(&ctx, counters::v1::GetStatsRequest(), &stats).ok());
  ASSERT_EQ(stats.handlers_size(), 2);
  int busy = 0;
  uint64_t calls = 0;
  for (const auto& h : stats.handlers()) {
    calls += h.calls();
    if (h.calls() > 0) ++busy;
  }
  EXPECT_GE(busy, 2) << "all connections landed on one handler";
  EXPECT_GE(calls, static_cast<uint64_t>(2 * total));
}

}  // namespace
}  // namespace countersd::testing
