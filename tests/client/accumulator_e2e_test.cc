// countersd::Accumulator against the real daemon: exact totals from
// several threads and two Accumulators on overlapping keys; the daemon
// stopped (memory bounded, drops past the bound counted and reported) and
// back (the sums kept arrive); the daemon refusing a message whose value
// would overflow, and bad keys, each reported with the counts.
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/accumulator.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/monotonic_time.h"
#include "tests/client/accumulator_reports.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/shared/logged_adds.h"

namespace countersd::testing {
namespace {

using ::testing::Pair;
using ::testing::UnorderedElementsAre;

AccumulatorOptions Options(Reports* reports) {
  AccumulatorOptions o;
  o.client.timeout = absl::Seconds(30);  // a loaded machine: no tight bound
  o.client.initial_backoff = absl::Milliseconds(20);
  o.client.max_backoff = absl::Milliseconds(200);
  o.on_error = reports->Callback();
  return o;
}

std::map<std::string, int64_t> Values(const std::string& address,
                                      const std::vector<std::string>& keys) {
  CounterClient client(address);
  absl::StatusOr<std::vector<CounterEntry>> got = client.BatchGet(keys);
  EXPECT_TRUE(got.ok()) << got.status();
  std::map<std::string, int64_t> out;
  if (got.ok()) {
    for (const CounterEntry& e : *got) out[e.key] = e.value;
  }
  return out;
}

class AccumulatorE2ETest : public SharedDaemonTest {
 protected:
  static void SetUpTestSuite() { StartSharedDaemon({.handlers = 2}); }
};

TEST_F(AccumulatorE2ETest, ThreadsOnOverlappingKeysSumExactly) {
  constexpr int kKeys = 300, kThreadsPerAccumulator = 3, kAdds = 200000;
  std::vector<std::string> keys;
  for (int k = 0; k < kKeys; ++k) keys.push_back(TestKey(absl::StrCat(k)));
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.max_batch = 128;  // several messages per flush
  options.flush_interval = absl::Milliseconds(10);
  std::vector<std::unique_ptr<Accumulator>> accs;
  for (int a = 0; a < 2; ++a) {
    accs.push_back(std::make_unique<Accumulator>(daemon_->address(), options));
  }
  std::vector<std::vector<int64_t>> sums(accs.size() * kThreadsPerAccumulator,
                                         std::vector<int64_t>(kKeys, 0));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < sums.size(); ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      Accumulator& acc = *accs[t % accs.size()];
      for (int i = 0; i < kAdds; ++i) {
        const int k = static_cast<int>(rng() % kKeys);
        const int64_t delta = static_cast<int64_t>(rng() % 21) - 10;
        ASSERT_TRUE(acc.Add(keys[k], delta).ok());
        sums[t][k] += delta;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (auto& acc : accs) {
    const absl::Status flushed = acc->Flush();
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const std::map<std::string, int64_t> values = Values(daemon_->address(), keys);
  for (int k = 0; k < kKeys; ++k) {
    int64_t want = 0;
    for (const auto& s : sums) want += s[k];
    EXPECT_EQ(values.at(keys[k]), want) << keys[k];
  }
  uint64_t adds = 0;
  for (auto& acc : accs) {
    const AccumulatorStats s = acc->stats();
    adds += s.adds;
    EXPECT_EQ(s.failed_adds(), 0u);
    EXPECT_EQ(s.unknown_increments + s.refused_increments, 0u);
    EXPECT_GT(s.acked_messages, 1u);
  }
  EXPECT_EQ(adds, uint64_t{kAdds} * sums.size());
  EXPECT_EQ(reports.size(), 0u);
}

TEST_F(AccumulatorE2ETest, AValueThatWouldOverflowIsRefusedAloneAndBadKeysTheirAdds) {
  const std::string big = TestKey("big"), other = TestKey("other");
  CounterClient client(daemon_->address());
  const int64_t max = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(client.Set(big, max - 5).ok());
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.flush_interval = absl::Hours(1);  // one message, sent by Flush
  Accumulator acc(daemon_->address(), options);
  ASSERT_TRUE(acc.Add(big, 10).ok());  // fine in the process, too much in the daemon
  ASSERT_TRUE(acc.Add(other, 3).ok());
  EXPECT_EQ(acc.Add("", 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(acc.Add(std::string(161, 'k'), 1).code(), absl::StatusCode::kInvalidArgument);
  const absl::Status flushed = acc.Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kInvalidArgument) << flushed;  // the first: a bad key
  // The daemon refused the message (atomic: nothing applied) naming the
  // overflowing increment; that one is reported, the other sent again.
  const std::vector<AccumulatorError> refused = reports.Of(AccumulatorError::kRefused);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].status.code(), absl::StatusCode::kOutOfRange) << refused[0].status;
  EXPECT_THAT(refused[0].increments, UnorderedElementsAre(Pair(big, 10)));
  EXPECT_EQ(reports.Of(AccumulatorError::kBadKey).size(), 2u);
  const AccumulatorStats s = acc.stats();
  EXPECT_EQ(s.bad_key_adds, 2u);
  EXPECT_EQ(s.refused_messages, 1u);
  EXPECT_EQ(s.refused_increments, 1u);
  EXPECT_EQ(s.acked_increments, 1u);
  EXPECT_EQ(*client.Get(big), max - 5);
  EXPECT_EQ(*client.Get(other), 3);
}

// exactly_once: every original handler SIGKILLed in turn while threads
// add; the messages the kills left unanswered are resent and applied once,
// so the daemon's totals are the sums exactly and nothing is unknown.
TEST(AccumulatorExactlyOnceTest, HandlersKilledWhileThreadsAddLeaveTheTotalsExact) {
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start({.handlers = 2});
  ASSERT_TRUE(d.ok()) << d.status();
  constexpr int kKeys = 100;
  std::vector<std::string> keys;
  for (int k = 0; k < kKeys; ++k) keys.push_back(absl::StrCat("acc-once/", k));
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.exactly_once = true;
  options.flush_interval = absl::Milliseconds(5);
  options.max_batch = 32;  // several messages in flight at a kill
  Accumulator acc((*d)->address(), options);
  std::atomic<bool> stop{false};
  std::vector<std::vector<int64_t>> sums(2, std::vector<int64_t>(kKeys, 0));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < sums.size(); ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 7);
      while (!stop.load()) {
        const int k = static_cast<int>(rng() % kKeys);
        if (acc.Add(keys[k], 1).ok()) ++sums[t][k];
      }
    });
  }
  const std::vector<pid_t> original = (*d)->HandlerPids();
  for (size_t n = 0; n < original.size(); ++n) {
    const uint64_t acked = acc.stats().acked_messages;
    ASSERT_EQ(kill(original[n], SIGKILL), 0);
    ASSERT_TRUE((*d)->WaitForLogCount("\"msg\":\"started handler\"", 3 + static_cast<int>(n),
                                      absl::Seconds(60)))
        << (*d)->log();
    // Sums keep being acknowledged after the kill.
    for (const absl::Time until = MonotonicNow() + absl::Seconds(60);
         acc.stats().acked_messages < acked + 20 && MonotonicNow() < until;) {
      (*d)->WaitForLog("no such line: a moment's wait", absl::Milliseconds(20));
    }
  }
  stop.store(true);
  for (auto& th : threads) th.join();
  ASSERT_TRUE(acc.Flush().ok());
  const AccumulatorStats s = acc.stats();
  EXPECT_EQ(s.unknown_increments, 0u);
  EXPECT_EQ(s.failed_adds(), 0u);
  EXPECT_EQ(reports.size(), 0u);
  std::map<std::string, int64_t> want;
  for (int k = 0; k < kKeys; ++k) want[keys[k]] = sums[0][k] + sums[1][k];
  EXPECT_EQ(Values((*d)->address(), keys), want);
}

// The daemon stopped, then started again on the same address and data.
// With `durable`, a Flush that returned OK means the sums are in the
// daemon's log of durable writes on disk (they survive a power loss).
TEST(AccumulatorDurableTest, AFlushThatReturnedOkLeftTheSumsInTheLogOfDurableWrites) {
  DaemonOptions daemon_options;
  daemon_options.handlers = 1;
  daemon_options.snapshot_interval = "1h";  // a snapshot would cover the log and remove it
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(daemon_options);
  ASSERT_TRUE(d.ok()) << d.status();
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.durable = true;
  options.flush_interval = absl::Hours(1);  // only Flush sends
  Accumulator acc((*d)->address(), options);
  std::map<std::string, int64_t> sums;
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 20; ++k) {
      const std::string key = absl::StrCat("acc-durable/", k);
      ASSERT_TRUE(acc.Add(key, k + round + 1).ok());
      sums[key] += k + round + 1;
    }
    ASSERT_TRUE(acc.Flush().ok());
    absl::StatusOr<std::map<std::string, int64_t>> logged = LoggedAdds((*d)->data_dir());
    ASSERT_TRUE(logged.ok()) << logged.status();
    EXPECT_EQ(*logged, sums) << "round " << round;
  }
  EXPECT_EQ(reports.size(), 0u);
}

TEST(AccumulatorDaemonDownTest, MemoryStaysBoundedWhileTheDaemonIsDownAndTheSumsArriveAfter) {
  ScopedTempDir dir;
  absl::StatusOr<std::unique_ptr<Daemon>> first =
      Daemon::Start({.handlers = 1, .data_dir = dir.path()});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string address = (*first)->address();
  Reports reports;
  AccumulatorOptions options = Options(&reports);
  options.client.timeout = absl::Seconds(2);  // how long a Send waits for a stream
  constexpr int kBoundKeys = 50;
  options.max_memory_bytes = kBoundKeys * (16 + Accumulator::kEntryOverheadBytes);
  Accumulator acc(address, options);
  ASSERT_TRUE(acc.Add("down/warm", 1).ok());
  // A stream is open (polled: connecting may outlast the 2 s on a loaded machine).
  absl::Status warm = acc.Flush();
  for (const absl::Time deadline = MonotonicNow() + absl::Seconds(60);
       !warm.ok() && MonotonicNow() < deadline; warm = acc.Flush()) {
    (*first)->WaitForLog("no such line: a moment's wait", absl::Milliseconds(50));
  }
  ASSERT_TRUE(warm.ok()) << warm;

  absl::StatusOr<int> stopped = (*first)->Terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  // Keys of 16 bytes: down/key-100000 ...
  int accepted = 0, dropped = 0;
  for (int i = 0; i < 3 * kBoundKeys; ++i) {
    const std::string key = absl::StrCat("down/key-", 100000 + i);
    const absl::Status s = acc.Add(key, i + 1);
    if (s.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
      ++dropped;
    }
  }
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(acc.Add("down/warm", 1).ok());  // known: in place
  EXPECT_FALSE(acc.Flush().ok());
  AccumulatorStats s = acc.stats();
  EXPECT_LE(s.memory_bytes, options.max_memory_bytes);
  EXPECT_EQ(s.dropped_adds, static_cast<uint64_t>(dropped));
  EXPECT_EQ(reports.Of(AccumulatorError::kMemoryFull).size(), static_cast<size_t>(dropped));
  EXPECT_GT(dropped, 0);
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(accepted + 1, static_cast<int>(s.keys));  // down/warm and the accepted ones

  // Back on the same address and data directory.
  absl::StatusOr<std::unique_ptr<Daemon>> second =
      Daemon::Start({.handlers = 1, .data_dir = dir.path(), .listen = address});
  ASSERT_TRUE(second.ok()) << second.status();
  absl::Status flushed = acc.Flush();
  for (const absl::Time deadline = MonotonicNow() + absl::Seconds(60);
       !flushed.ok() && MonotonicNow() < deadline; flushed = acc.Flush()) {
    // UNAVAILABLE at once until the stream has reopened: poll.
    (*second)->WaitForLog("no such line: a moment's wait", absl::Milliseconds(50));
  }
  ASSERT_TRUE(flushed.ok()) << flushed;
  std::vector<std::string> keys = {"down/warm"};
  for (int i = 0; i < 3 * kBoundKeys; ++i) keys.push_back(absl::StrCat("down/key-", 100000 + i));
  const std::map<std::string, int64_t> values = Values(address, keys);
  EXPECT_EQ(values.at("down/warm"), 10001);
  int present = 0;
  for (int i = 0; i < 3 * kBoundKeys; ++i) {
    const int64_t v = values.at(absl::StrCat("down/key-", 100000 + i));
    if (v != 0) {
      ++present;
      EXPECT_EQ(v, i + 1);
    }
  }
  EXPECT_EQ(present, accepted);  // each accepted sum arrived, each dropped one did not
  EXPECT_EQ(acc.stats().unknown_increments, 0u);
}

}  // namespace
}  // namespace countersd::testing
