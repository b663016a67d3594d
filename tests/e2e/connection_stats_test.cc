// GetStats' connection counts (issue 11): what each handler's admission gate
// (server/connection_gate.h) accepted, refused over --max-connections,
// closed at --handshake-timeout, and holds open, per handler and in total,
// and the totals after a handler is killed and respawned.
//
// The connections under test are raw TCP sockets, since a gRPC channel
// would retry a refused connection and always sends its preface. Each test
// waits for the server's answer on every socket (its SETTINGS: admitted; a
// reset: refused; EOF: closed) before it reads the stats: the gate stores
// its counts before it hands a socket over or closes it, so the counts are
// exact then, with no waiting. Only `open` after a close by the client
// is polled: the gate notices gRPC's close by a sweep, at most a second
// later.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using counters::v1::ConnectionStats;
using counters::v1::CounterService;
using counters::v1::GetStatsResponse;

constexpr absl::Duration kWait = absl::Seconds(30);

// The client preface: the magic and an empty SETTINGS frame (RFC 9113, 3.4).
constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
constexpr size_t kPrefaceSize = sizeof kPreface - 1;  // 24 + 9
constexpr char kSettingsAck[] = "\0\0\0\x04\x01\0\0\0\0";

enum class Answer { kAdmitted, kReset, kClosed, kNone };

std::string Name(Answer a) {
  switch (a) {
    case Answer::kAdmitted: return "admitted";
    case Answer::kReset: return "reset";
    case Answer::kClosed: return "closed";
    case Answer::kNone: return "no answer";
  }
  return "?";
}

// One raw TCP connection to the daemon.
class RawConnection {
 public:
  explicit RawConnection(const std::string& address) : fd_(ConnectTcp(address)) {}
  ~RawConnection() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // A refused socket may be reset before the send; the send then takes the
  // error (a later recv sees EOF), so it is kept as the answer.
  void SendPreface() {
    if (send(fd_, kPreface, kPrefaceSize, MSG_NOSIGNAL) < 0) send_errno_ = errno;
  }

  // The server's first answer within `timeout`. Admitted: gRPC sent its
  // SETTINGS, which this acknowledges, so the connection stays as a real
  // client's would.
  Answer Await(absl::Duration timeout) {
    if (send_errno_ == ECONNRESET || send_errno_ == EPIPE) return Answer::kReset;
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) {
      return Answer::kNone;
    }
    char buf[256];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      send(fd_, kSettingsAck, sizeof kSettingsAck - 1, MSG_NOSIGNAL);
      return Answer::kAdmitted;
    }
    if (n == 0) return Answer::kClosed;
    if (errno == ECONNRESET) return Answer::kReset;
    ADD_FAILURE() << "recv: " << strerror(errno);
    return Answer::kNone;
  }

 private:
  int fd_ = -1;
  int send_errno_ = 0;
};

// GetStats on `stub`, waiting for a handler to serve it.
GetStatsResponse Stats(CounterService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(GrpcDeadlineAfter(kWait));
  GetStatsResponse resp;
  grpc::Status s = stub.GetStats(&ctx, {}, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

std::string Show(const ConnectionStats& c) {
  return absl::StrCat("accepted=", c.accepted(), " refused_over_cap=", c.refused_over_cap(),
                      " handshake_timeouts=", c.handshake_timeouts(), " open=", c.open());
}

void ExpectCounts(const ConnectionStats& c, uint64_t accepted, uint64_t refused,
                  uint64_t timeouts, uint64_t open) {
  EXPECT_EQ(c.accepted(), accepted) << Show(c);
  EXPECT_EQ(c.refused_over_cap(), refused) << Show(c);
  EXPECT_EQ(c.handshake_timeouts(), timeouts) << Show(c);
  EXPECT_EQ(c.open(), open) << Show(c);
}

std::unique_ptr<Daemon> StartOneHandler(std::vector<std::string> flags) {
  DaemonOptions options;
  options.handlers = 1;  // every connection reaches the same gate
  options.capacity = 1000;
  options.extra_flags = std::move(flags);
  auto daemon = Daemon::Start(options);
  EXPECT_TRUE(daemon.ok()) << daemon.status();
  return daemon.ok() ? std::move(*daemon) : nullptr;
}

TEST(ConnectionStatsTest, ConnectionsOverTheCapAreCountedRefusedAndOpenOnesOpen) {
  std::unique_ptr<Daemon> daemon = StartOneHandler({"--max-connections=4"});
  ASSERT_NE(daemon, nullptr);
  auto stub = NewStub(daemon->address());
  GetStatsResponse before = Stats(*stub);  // its own connection: 1 of the 4
  ASSERT_EQ(before.handlers_size(), 1);
  ExpectCounts(before.connections(), 1, 0, 0, 1);

  // Six more, one after the other (the gate accepts them in that order):
  // three fit under the cap, three are reset.
  std::vector<std::unique_ptr<RawConnection>> conns;
  std::vector<Answer> answers;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(std::make_unique<RawConnection>(daemon->address()));
  }
  for (auto& c : conns) c->SendPreface();
  for (auto& c : conns) answers.push_back(c->Await(kWait));
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(Name(answers[i]), Name(i < 3 ? Answer::kAdmitted : Answer::kReset)) << "socket " << i;
  }

  GetStatsResponse at_cap = Stats(*stub);
  ASSERT_EQ(at_cap.handlers_size(), 1);
  ExpectCounts(at_cap.handlers(0).connections(), 4, 3, 0, 4);
  ExpectCounts(at_cap.connections(), 4, 3, 0, 4);

  // Two of the admitted ones go: `open` falls once the gate's sweep sees
  // gRPC closed them; the totals stay.
  conns[0]->Close();
  conns[1]->Close();
  absl::Time deadline = MonotonicNow() + kWait;
  GetStatsResponse after = Stats(*stub);
  while (after.connections().open() != 2 && MonotonicNow() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));  // polling a gauge with a deadline
    after = Stats(*stub);
  }
  ExpectCounts(after.connections(), 4, 3, 0, 2);
}

TEST(ConnectionStatsTest, ASilentConnectionIsCountedAsAHandshakeTimeout) {
  // Long enough for the check below to see the silent socket waiting.
  std::unique_ptr<Daemon> daemon = StartOneHandler({"--handshake-timeout=3s"});
  ASSERT_NE(daemon, nullptr);
  auto stub = NewStub(daemon->address());
  ExpectCounts(Stats(*stub).connections(), 1, 0, 0, 1);

  RawConnection silent(daemon->address());  // connects, never sends a byte
  // While it waits for its preface it is open, not accepted.
  absl::Time deadline = MonotonicNow() + kWait;
  GetStatsResponse waiting = Stats(*stub);
  while (waiting.connections().open() != 2 && MonotonicNow() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // until the gate has accepted it
    waiting = Stats(*stub);
  }
  EXPECT_EQ(waiting.connections().open(), 2u) << Show(waiting.connections());
  EXPECT_EQ(waiting.connections().handshake_timeouts(), 0u) << Show(waiting.connections());

  EXPECT_EQ(Name(silent.Await(kWait)), Name(Answer::kClosed));
  GetStatsResponse after = Stats(*stub);
  ASSERT_EQ(after.handlers_size(), 1);
  ExpectCounts(after.handlers(0).connections(), 1, 0, 1, 1);
  ExpectCounts(after.connections(), 1, 0, 1, 1);
}

TEST(ConnectionStatsTest, TotalsKeepWhatAKilledHandlerCounted) {
  std::unique_ptr<Daemon> daemon = StartOneHandler({"--max-connections=2"});
  ASSERT_NE(daemon, nullptr);
  auto stub = NewStub(daemon->address());
  GetStatsResponse first = Stats(*stub);
  ASSERT_EQ(first.handlers_size(), 1);
  const pid_t victim = first.handlers(0).pid();
  RawConnection admitted(daemon->address());
  admitted.SendPreface();
  ASSERT_EQ(Name(admitted.Await(kWait)), Name(Answer::kAdmitted));
  for (int i = 0; i < 2; ++i) {
    RawConnection refused(daemon->address());
    refused.SendPreface();
    ASSERT_EQ(Name(refused.Await(kWait)), Name(Answer::kReset)) << "socket " << i;
  }
  ExpectCounts(Stats(*stub).connections(), 2, 2, 0, 2);

  ASSERT_EQ(kill(victim, SIGKILL), 0);
  // The supervisor logs the exit after its recovery moved the totals.
  ASSERT_TRUE(daemon->WaitForLog("\"msg\":\"handler exited\"", kWait)) << daemon->log();
  // A call sent on the dead connection before the channel noticed fails
  // (UNAVAILABLE): the next one reconnects, to the new handler.
  GetStatsResponse after;
  for (absl::Time deadline = MonotonicNow() + kWait; MonotonicNow() < deadline;) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(GrpcDeadlineAfter(deadline - MonotonicNow()));
    if (stub->GetStats(&ctx, {}, &after).ok()) break;
  }
  ASSERT_EQ(after.handlers_size(), 1);
  ASSERT_NE(after.handlers(0).pid(), victim);
  const ConnectionStats& own = after.handlers(0).connections();
  EXPECT_GE(own.accepted(), 1u) << Show(own);  // the stats client's new connection
  EXPECT_EQ(own.refused_over_cap(), 0u) << Show(own);
  // The dead handler's 2 accepted and 2 refused are in the totals; its
  // open connections died with it.
  EXPECT_EQ(after.connections().accepted(), 2 + own.accepted()) << Show(after.connections());
  EXPECT_EQ(after.connections().refused_over_cap(), 2u) << Show(after.connections());
  EXPECT_EQ(after.connections().open(), own.open()) << Show(after.connections());
}

}  // namespace
}  // namespace countersd::testing
