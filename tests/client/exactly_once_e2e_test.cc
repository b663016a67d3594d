// Exactly-once writes against the real daemon (client.h, "Mutations"):
// CounterClients with sessions increment from several threads while every
// handler is SIGKILLed in turn, repeatedly, and while the whole daemon is
// stopped and restarted (SIGTERM, then SIGKILL of every process) on the same
// address and data directory. Every call must return OK (its retries carry
// it over each crash within its deadline), and the final values must equal
// the increments the clients issued, exactly: a write applied twice, or an
// acknowledged one lost, fails the test. The unit tests of the same
// client on a fake daemon are in exactly_once_test.cc.
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/client/own_connection.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

constexpr absl::Duration kPatience = absl::Seconds(60);
constexpr int kKeys = 8;
constexpr int kClients = 2;
constexpr int kThreadsPerClient = 2;  // a session's writes in flight at once

// A client on its own TCP connection (so the clients spread over the
// handlers), reconnecting within 50 to 500ms, whose calls outlast any
// restart: the deadline, not the count, bounds the retries.
std::unique_ptr<CounterClient> NewClient(const std::string& address, int index) {
  grpc::ChannelArguments args = OwnFastReconnectingConnection(index);
  ClientOptions options;
  options.timeout = kPatience;
  options.max_attempts = 1 << 20;
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(200);
  options.attempt_timeout = absl::Seconds(2);
  return std::make_unique<CounterClient>(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args), options);
}

// Threads writing through kClients clients until Stop: Increments of 1 to
// 3, and every fifth write an IncrementBatch over two keys, each thread
// keeping the sums it issued per key. Any failed call is recorded.
class Writers {
 public:
  Writers(const std::string& address, const std::vector<std::string>& keys) : keys_(keys) {
    for (int c = 0; c < kClients; ++c) clients_.push_back(NewClient(address, c));
    // Every thread's sums before any thread starts: no reallocation under them.
    sums_.assign(kClients * kThreadsPerClient, std::vector<int64_t>(keys.size(), 0));
    for (int t = 0; t < kClients * kThreadsPerClient; ++t) {
      threads_.emplace_back([this, t] { Write(t); });
    }
  }
  ~Writers() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  uint64_t ok() const { return ok_.load(); }
  // The sum issued per key (every call returned OK, or failures() says).
  std::vector<int64_t> Issued() const {
    std::vector<int64_t> total(keys_.size(), 0);
    for (const std::vector<int64_t>& s : sums_) {
      for (size_t k = 0; k < s.size(); ++k) total[k] += s[k];
    }
    return total;
  }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }
  // The failed calls, one a line, for a test's failure message.
  std::string FailureLines() const {
    std::string out;
    for (const std::string& f : failures()) absl::StrAppend(&out, f, "\n");
    return out;
  }
  // Waits until `more` calls beyond `from` returned OK (true), or a call
  // failed, or kPatience passed (false).
  bool WaitForProgress(uint64_t from, uint64_t more) const {
    const absl::Time deadline = MonotonicNow() + kPatience;
    while (MonotonicNow() < deadline) {
      if (ok_.load() >= from + more) return true;
      if (!failures().empty()) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

 private:
  void Write(int t) {
    CounterClient& client = *clients_[t % kClients];
    std::vector<int64_t>& sums = sums_[t];
    for (uint64_t n = 0; !stop_.load(); ++n) {
      const size_t a = (t + n) % keys_.size();
      const size_t b = (t + 3 * n + 1) % keys_.size();
      const int64_t delta = 1 + static_cast<int64_t>(n % 3);
      absl::Status status;
      if (n % 5 == 4) {
        const IncrementOp ops[] = {{keys_[a], delta}, {keys_[b], 1}};
        absl::StatusOr<std::vector<int64_t>> r = client.IncrementBatch(ops);
        status = r.status();
        if (status.ok()) {
          sums[a] += delta;
          sums[b] += 1;
        }
      } else {
        absl::StatusOr<int64_t> r = client.Increment(keys_[a], delta);
        status = r.status();
        if (status.ok()) sums[a] += delta;
      }
      if (status.ok()) {
        ok_.fetch_add(1);
      } else {
        std::lock_guard lock(mu_);
        failures_.push_back(absl::StrCat("thread ", t, " write ", n, ": ", status.ToString()));
        return;  // its outcome is unknown: the sums could no longer be exact
      }
    }
  }

  const std::vector<std::string> keys_;
  std::vector<std::unique_ptr<CounterClient>> clients_;
  std::vector<std::vector<int64_t>> sums_;  // one per thread, its own
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0};
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
};

std::vector<std::string> Keys(absl::string_view test) {
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(absl::StrCat("exactly-once/", test, "/", i));
  return keys;
}

// The values now, read with a client of its own.
std::vector<int64_t> Values(const std::string& address, const std::vector<std::string>& keys) {
  CounterClient reader(address, ClientOptions{.timeout = kPatience});
  absl::StatusOr<std::vector<CounterEntry>> got = reader.BatchGet(keys);
  EXPECT_TRUE(got.ok()) << got.status();
  std::vector<int64_t> values;
  if (got.ok()) {
    for (const CounterEntry& e : *got) values.push_back(e.value);
  }
  return values;
}

TEST(ExactlyOnceE2ETest, HandlersKilledRepeatedlyUnderWritesLeaveExactSums) {
  absl::StatusOr<std::unique_ptr<Daemon>> started = Daemon::Start({.handlers = 2});
  ASSERT_TRUE(started.ok()) << started.status();
  Daemon* d = started->get();
  const std::vector<std::string> keys = Keys("handler-kills");
  Writers writers(d->address(), keys);
  ASSERT_TRUE(writers.WaitForProgress(0, 200)) << writers.FailureLines() << d->log();
  // Six kills: each of the current handlers in turn, the next only once
  // its replacement serves and the writes went on past it.
  constexpr int kKills = 6;
  for (int n = 0; n < kKills; ++n) {
    const std::vector<pid_t> handlers = d->HandlerPids();
    ASSERT_EQ(handlers.size(), 2u) << d->log();
    const uint64_t before = writers.ok();
    ASSERT_EQ(kill(handlers[n % handlers.size()], SIGKILL), 0);
    ASSERT_TRUE(d->WaitForLogCount("\"msg\":\"started handler\"", 3 + n, kPatience)) << d->log();
    ASSERT_TRUE(writers.WaitForProgress(before, 100)) << writers.FailureLines() << d->log();
  }
  writers.Stop();
  EXPECT_TRUE(writers.failures().empty()) << writers.failures().front();
  EXPECT_EQ(Values(d->address(), keys), writers.Issued())
      << "the daemon's values differ from the increments issued: a write applied twice or lost";
  RecordProperty("writes", static_cast<int>(writers.ok()));
}

TEST(ExactlyOnceE2ETest, TheDaemonStoppedAndKilledUnderWritesLeavesExactSums) {
  ScopedTempDir dir;
  absl::StatusOr<std::unique_ptr<Daemon>> first =
      Daemon::Start({.handlers = 2, .data_dir = dir.path()});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string address = (*first)->address();
  const std::vector<std::string> keys = Keys("restarts");
  Writers writers(address, keys);
  ASSERT_TRUE(writers.WaitForProgress(0, 200)) << writers.FailureLines() << (*first)->log();

  // A clean stop under the writes (the handlers drain: calls in flight end
  // UNAVAILABLE and are retried), then a start on the same address.
  uint64_t before = writers.ok();
  absl::StatusOr<int> stopped = (*first)->Terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  first->reset();
  absl::StatusOr<std::unique_ptr<Daemon>> second =
      Daemon::Start({.handlers = 2, .data_dir = dir.path(), .listen = address});
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(writers.WaitForProgress(before, 200)) << writers.FailureLines() << (*second)->log();

  // Every process SIGKILLed at once (a crash of the whole daemon, the host
  // up), then a start that repairs the table and serves it.
  before = writers.ok();
  (*second)->KillAll();
  second->reset();
  absl::StatusOr<std::unique_ptr<Daemon>> third =
      Daemon::Start({.handlers = 2, .data_dir = dir.path(), .listen = address});
  ASSERT_TRUE(third.ok()) << third.status();
  ASSERT_TRUE(writers.WaitForProgress(before, 200)) << writers.FailureLines() << (*third)->log();

  writers.Stop();
  EXPECT_TRUE(writers.failures().empty()) << writers.failures().front();
  EXPECT_EQ(Values(address, keys), writers.Issued())
      << "the daemon's values differ from the increments issued: a write applied twice or lost";
  RecordProperty("writes", static_cast<int>(writers.ok()));
}

}  // namespace
}  // namespace countersd::testing
