// WriteOptions against the real daemon, from several threads at once: durable
// increments answered only once their records are in the log of durable
// writes (the commit thread answers them: its hand-off runs under make tsan
// too), and session writes retried concurrently on two connections applied
// once.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/write_ahead_log.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using counters::v1::CounterService;

grpc::Status Increment(CounterService::Stub* stub, const std::string& key, int64_t delta,
                       bool durable, const std::string& session = "", uint64_t sequence = 0,
                       int64_t* value = nullptr) {
  return IncrementWithOptions(stub, key, delta, SessionOptions(session, sequence, durable), value);
}

// The same write resent while the transport fails (UNAVAILABLE: a
// connection reset before it was answered), as a client with a session
// may: it is applied once whatever happened to the attempts before.
grpc::Status IncrementRetried(CounterService::Stub* stub, const std::string& key, int64_t delta,
                              bool durable, const std::string& session, uint64_t sequence,
                              int64_t* value = nullptr) {
  grpc::Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {
    st = Increment(stub, key, delta, durable, session, sequence, value);
    if (st.error_code() != grpc::StatusCode::UNAVAILABLE) break;
  }
  return st;
}

TEST(WriteOptionsTest, ConcurrentDurableIncrementsAreEachInTheLogWhenAnswered) {
  DaemonOptions options;
  options.handlers = 2;
  // No periodic snapshot: one would cover the log and its segments would go.
  options.snapshot_interval = "1h";
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  constexpr int kThreads = 4, kPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = NewStubOnOwnConnection((*daemon)->address());
      const std::string session(16, static_cast<char>('A' + t));
      for (int i = 0; i < kPerThread; ++i) {
        const std::string key = absl::StrCat("wo/durable/", t);
        if (!IncrementRetried(stub.get(), key, 1, true, session, i + 1).ok()) {
          ++failures;
          continue;
        }
        // Answered: what it wrote is on disk already, whichever handler took
        // it: its own record (+1), or, for a retry answered as a duplicate,
        // the key's value then.
        absl::StatusOr<std::vector<WalRecord>> log = ReadWal((*daemon)->data_dir());
        int64_t added = 0, set = 0;
        if (log.ok()) {
          for (const WalRecord& r : *log) {
            for (const WalOp& op : r.ops) {
              if (op.key != key) continue;
              if (op.kind == WalOp::kAdd) added += op.value;
              if (op.kind == WalOp::kSet) set = std::max(set, op.value);
            }
          }
        }
        if (std::max(added, set) < i + 1) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << (*daemon)->log();
  auto stub = NewStub((*daemon)->address());
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(CounterValue(stub.get(), absl::StrCat("wo/durable/", t)), kPerThread);
  }
}

TEST(WriteOptionsTest, OneSessionsWriteSentOnTwoConnectionsAtOnceIsAppliedOnce) {
  DaemonOptions options;
  options.handlers = 2;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string session(16, 'w');
  constexpr int kWrites = 40;
  std::map<uint64_t, int64_t> first, second;
  auto send_all = [&](std::map<uint64_t, int64_t>* answers) {
    auto stub = NewStubOnOwnConnection((*daemon)->address());
    for (uint64_t q = 1; q <= kWrites; ++q) {
      int64_t v = 0;
      grpc::Status st = IncrementRetried(stub.get(), "wo/session", static_cast<int64_t>(q),
                                         q % 2 == 0, session, q, &v);
      if (st.ok()) {
        (*answers)[q] = v;
      } else {
        ADD_FAILURE() << "write " << q << ": " << st.error_code() << " " << st.error_message();
      }
    }
  };
  std::thread a(send_all, &first), b(send_all, &second);
  a.join();
  b.join();
  ASSERT_EQ(first.size(), size_t{kWrites}) << (*daemon)->log();
  ASSERT_EQ(second.size(), size_t{kWrites}) << (*daemon)->log();
  EXPECT_EQ(first, second) << "a retry was answered otherwise than its first application";
  auto stub = NewStub((*daemon)->address());
  EXPECT_EQ(CounterValue(stub.get(), "wo/session"), kWrites * (kWrites + 1) / 2);
}

// The daemon's flags bound the sessions: --sessions-max=2 keeps two, a third
// takes the least recently written one's place, and the forgotten one's
// next write (above the window) is refused, never applied.
TEST(WriteOptionsTest, SessionsMaxForgetsTheLeastRecentlyWrittenSession) {
  DaemonOptions options;
  options.handlers = 1;
  options.extra_flags = {"--sessions-max=2", "--session-ttl=1h"};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  const std::string a(16, 'a'), b(16, 'b'), c(16, 'c');
  for (uint64_t q = 1; q <= 70; ++q) ASSERT_TRUE(Increment(stub.get(), "wo/max", 1, false, a, q).ok());
  ASSERT_TRUE(Increment(stub.get(), "wo/max", 1, false, b, 1).ok());
  ASSERT_TRUE(Increment(stub.get(), "wo/max", 1, false, c, 1).ok());  // a's place
  grpc::Status forgotten = Increment(stub.get(), "wo/max", 1, false, a, 71);
  EXPECT_EQ(forgotten.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << forgotten.error_message();
  EXPECT_NE(forgotten.error_message().find("unknown session"), std::string::npos)
      << forgotten.error_message();
  EXPECT_TRUE(Increment(stub.get(), "wo/max", 1, false, b, 1).ok());  // still remembered
  EXPECT_EQ(CounterValue(stub.get(), "wo/max"), 72);
}

}  // namespace
}  // namespace countersd::testing
