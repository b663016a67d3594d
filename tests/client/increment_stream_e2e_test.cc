// countersd::IncrementStream against the real daemon: every original
// handler SIGKILLed in turn under stream load. Everything acknowledged is
// present and nothing is applied twice: for every key, acked <= value <=
// acked + unknown, where unknown is exactly what the client reported; and
// every stream reopened and went on.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/increment_stream.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/client/own_connection.h"
#include "shared/bearer_token.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

constexpr absl::Duration kPatience = absl::Seconds(60);
constexpr int kKeys = 8;

// A stream on its own TCP connection, so the streams spread over the
// handlers, with a sender thread and its results counted by outcome.
class LoadedStream {
 public:
  LoadedStream(const std::string& address, int index, const std::vector<std::string>& keys,
               bool exactly_once) {
    grpc::ChannelArguments args = OwnFastReconnectingConnection(index);
    IncrementStreamOptions options;
    options.client.timeout = absl::Seconds(30);  // a loaded machine: no tight bound
    options.window = 8;
    options.exactly_once = exactly_once;
    stream_ = std::make_unique<IncrementStream>(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args), options,
        [this](const StreamResult& r) {
          if (r.outcome == StreamOutcome::kAnswered && r.status.ok()) {
            acked_.fetch_add(1);
          } else if (r.outcome == StreamOutcome::kUnknown) {
            unknown_.fetch_add(1);
          } else {
            not_applied_.fetch_add(1);  // answered with an error, or never sent
          }
        });
    for (const std::string& k : keys) ops_.push_back({k, 1});
    sender_ = std::thread([this] {
      while (!stop_.load()) {
        // UNAVAILABLE while no stream is open: try again (Send waits first).
        if (!stream_->Send(ops_).ok()) ++send_failures_;
      }
    });
  }
  // Stops sending and waits for every result.
  void Finish() {
    stop_.store(true);
    sender_.join();
    stream_->Close(kPatience);
  }
  uint64_t acked() const { return acked_.load(); }
  uint64_t unknown() const { return unknown_.load(); }
  IncrementStream::Stats stats() const { return stream_->stats(); }

 private:
  std::unique_ptr<IncrementStream> stream_;
  std::vector<IncrementOp> ops_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acked_{0}, unknown_{0}, not_applied_{0};
  uint64_t send_failures_ = 0;
  std::thread sender_;
};

// Waits until every stream has `more` acknowledged messages beyond `from`.
bool WaitForProgress(const std::vector<std::unique_ptr<LoadedStream>>& streams,
                     const std::vector<uint64_t>& from, uint64_t more, Daemon* daemon) {
  for (const absl::Time deadline = MonotonicNow() + kPatience; MonotonicNow() < deadline;) {
    bool all = true;
    for (size_t i = 0; i < streams.size(); ++i) all &= streams[i]->acked() >= from[i] + more;
    if (all) return true;
    daemon->WaitForLog("no such line: a moment's wait", absl::Milliseconds(50));
  }
  return false;
}

std::vector<uint64_t> Acked(const std::vector<std::unique_ptr<LoadedStream>>& streams) {
  std::vector<uint64_t> a;
  for (const auto& s : streams) a.push_back(s->acked());
  return a;
}

// Every original handler SIGKILLed in turn under the load of 4 streams;
// returns every key's value with what the streams acknowledged and left
// unknown.
struct KillResult {
  uint64_t acked = 0, unknown = 0;
  std::vector<CounterEntry> values;
};
void KillEveryHandlerUnderStreams(bool exactly_once, KillResult* out) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start({.handlers = 2});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Daemon* const d = daemon->get();
  std::vector<std::string> keys;
  for (int k = 0; k < kKeys; ++k) keys.push_back(absl::StrCat("stream-crash/", k));

  std::vector<std::unique_ptr<LoadedStream>> streams;
  for (int i = 0; i < 4; ++i)
    streams.push_back(std::make_unique<LoadedStream>(d->address(), i, keys, exactly_once));
  ASSERT_TRUE(WaitForProgress(streams, std::vector<uint64_t>(streams.size(), 0), 50, d));

  // Each original handler in turn: every stream opened before the first
  // kill is on one of them, so every stream breaks at least once.
  const std::vector<pid_t> original = d->HandlerPids();
  ASSERT_EQ(original.size(), 2u);
  for (size_t n = 0; n < original.size(); ++n) {
    const std::vector<uint64_t> before = Acked(streams);
    ASSERT_EQ(kill(original[n], SIGKILL), 0);
    ASSERT_TRUE(
        d->WaitForLogCount("\"msg\":\"started handler\"", 3 + static_cast<int>(n), kPatience))
        << d->log();
    // The load goes on: each stream (reopened if it broke) is acknowledged again.
    ASSERT_TRUE(WaitForProgress(streams, before, 20, d)) << d->log();
  }
  uint64_t& acked = out->acked;
  uint64_t& unknown = out->unknown;
  for (auto& s : streams) {
    s->Finish();
    const IncrementStream::Stats stats = s->stats();
    EXPECT_GE(stats.breaks, 1u);
    EXPECT_GE(stats.streams, 2u);
    EXPECT_EQ(stats.unknown, s->unknown());  // what the callback saw is what it counts
    EXPECT_EQ(stats.sent, stats.answered + stats.unknown + stats.not_sent);
    acked += s->acked();
    unknown += s->unknown();
  }
  CounterClient client(d->address());
  absl::StatusOr<std::vector<CounterEntry>> values = client.BatchGet(keys);
  ASSERT_TRUE(values.ok()) << values.status();
  out->values = *values;
  ASSERT_EQ(out->values.size(), keys.size());
}

TEST(IncrementStreamE2ETest, KillingEveryHandlerUnderLoadLosesNothingAckedAndCountsNothingTwice) {
  KillResult r;
  KillEveryHandlerUnderStreams(false, &r);
  const uint64_t acked = r.acked, unknown = r.unknown;
  for (const CounterEntry& e : r.values) {
    // Every message adds 1 to every key.
    EXPECT_GE(e.value, static_cast<int64_t>(acked)) << e.key << ": an acknowledged message is lost";
    EXPECT_LE(e.value, static_cast<int64_t>(acked + unknown))
        << e.key << ": more than acknowledged + unknown (" << acked << " + " << unknown
        << "): something was applied twice or never reported";
  }
  RecordProperty("acked", static_cast<int>(acked));
  RecordProperty("unknown", static_cast<int>(unknown));
}

// exactly_once: the messages the kills left unanswered are resent on the
// new streams and applied once: every value is exactly what was
// acknowledged, and nothing is unknown.
TEST(IncrementStreamE2ETest, ExactlyOnceKillingEveryHandlerUnderLoadCountsEveryMessageOnce) {
  KillResult r;
  KillEveryHandlerUnderStreams(true, &r);
  EXPECT_EQ(r.unknown, 0u);
  for (const CounterEntry& e : r.values) {
    EXPECT_EQ(e.value, static_cast<int64_t>(r.acked)) << e.key;
  }
  RecordProperty("acked", static_cast<int>(r.acked));
}

// With --auth-file: a write token's stream works (the token is sent on
// each stream); a read token's is refused, and Send says so.
TEST(IncrementStreamE2ETest, TheBearerTokenDecidesWhetherTheStreamOpens) {
  ScopedTempDir dir;
  absl::StatusOr<std::string> writer = NewBearerToken(), reader = NewBearerToken();
  ASSERT_TRUE(writer.ok() && reader.ok());
  const std::string auth_file = absl::StrCat(dir.path(), "/auth");
  {
    std::ofstream out(auth_file);
    out << TokenPrincipal(*writer) << " write\n" << TokenPrincipal(*reader) << " read\n";
  }
  ASSERT_EQ(chmod(auth_file.c_str(), 0600), 0);
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      Daemon::Start({.handlers = 1, .extra_flags = {absl::StrCat("--auth-file=", auth_file)}});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto channel = grpc::CreateChannel((*daemon)->address(), grpc::InsecureChannelCredentials());
  const IncrementOp one[] = {{"auth/k", 1}};

  IncrementStreamOptions options;
  options.client.timeout = absl::Seconds(30);
  options.client.bearer_token = *writer;
  std::atomic<int> ok{0};
  {
    IncrementStream stream(channel, options, [&](const StreamResult& r) {
      if (r.outcome == StreamOutcome::kAnswered && r.status.ok()) ++ok;
    });
    ASSERT_TRUE(stream.Send(one).ok());
    ASSERT_TRUE(stream.WaitForResults(absl::Seconds(30)).ok());
  }
  EXPECT_EQ(ok.load(), 1);

  options.client.timeout = absl::Seconds(2);  // how long Send waits for a stream
  options.client.bearer_token = *reader;
  std::atomic<int> not_applied{0}, other{0};
  IncrementStream refused(channel, options, [&](const StreamResult& r) {
    ++(r.outcome == StreamOutcome::kNotSent &&
               r.status.code() == absl::StatusCode::kPermissionDenied
           ? not_applied
           : other);
  });
  // A Send may go out on a stream before its refusal arrives (and is then
  // resolved as not applied); once refused, Send fails at once with it. The
  // stream opens by itself, so the refusal may come before the first Send:
  // then none is accepted.
  int accepted = 0;
  absl::StatusOr<uint64_t> sent = refused.Send(one);
  for (const absl::Time deadline = MonotonicNow() + absl::Seconds(60);
       sent.ok() && MonotonicNow() < deadline;) {
    ++accepted;
    sent = refused.Send(one);
  }
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kPermissionDenied) << sent.status();
  EXPECT_TRUE(refused.WaitForResults(absl::Seconds(30)).ok());
  EXPECT_EQ(not_applied.load(), accepted);  // every accepted Send: not applied
  EXPECT_EQ(other.load(), 0);  // none unknown: a refused stream applied nothing
  CounterClient client((*daemon)->address(), {.bearer_token = *writer});
  EXPECT_EQ(*client.Get("auth/k"), 1);
}

}  // namespace
}  // namespace countersd::testing
