// systemd readiness (server/systemd_notify.h) against a test socket: the
// test binds an AF_UNIX datagram socket, as systemd does, and starts the real
// daemon with NOTIFY_SOCKET (and WATCHDOG_USEC) pointing at it. Every wait
// reads the socket with a timeout under a bounded deadline.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::HasSubstr;

// The receiving end of sd_notify: a bound AF_UNIX SOCK_DGRAM socket.
class NotifySocket {
 public:
  NotifySocket() : path_(absl::StrCat(dir_.path(), "/notify")) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ADD_FAILURE() << "cannot bind " << path_ << ": " << std::strerror(errno);
    }
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
  }

  // NOTIFY_SOCKET=<path>, for the daemon's environment.
  std::string Env() const { return absl::StrCat("NOTIFY_SOCKET=", path_); }

  // The next datagram, or nullopt if none arrives within `timeout`.
  std::optional<std::string> Receive(absl::Duration timeout) {
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    std::string message(buf, static_cast<size_t>(n));
    received_.push_back(message);
    return message;
  }

  // Receives until a datagram has the line `line` (true), or until
  // `timeout` passes (false). Every datagram read is kept in received().
  bool WaitFor(std::string_view line, absl::Duration timeout) {
    const absl::Time deadline = MonotonicNow() + timeout;
    while (MonotonicNow() < deadline) {
      std::optional<std::string> m = Receive(deadline - MonotonicNow());
      if (m && HasLine(*m, line)) return true;
    }
    return false;
  }

  static bool HasLine(std::string_view message, std::string_view line) {
    for (std::string_view rest = message; !rest.empty();) {
      const size_t nl = rest.find('\n');
      if (rest.substr(0, nl) == line) return true;
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
    return false;
  }

  const std::vector<std::string>& received() const { return received_; }
  // How many datagrams received so far have the line `line`.
  int Count(std::string_view line) const {
    int n = 0;
    for (const std::string& m : received_) n += HasLine(m, line) ? 1 : 0;
    return n;
  }
  std::string Transcript() const {
    std::string out;
    for (const std::string& m : received_) absl::StrAppend(&out, "[", m, "]\n");
    return out;
  }

 private:
  ScopedTempDir dir_;
  std::string path_;
  int fd_ = -1;
  std::vector<std::string> received_;
};

constexpr absl::Duration kWait = absl::Seconds(60);

// Options with `handlers` (0: no --handlers flag), extra flags and
// environment.
DaemonOptions With(int handlers, std::vector<std::string> env,
                   std::vector<std::string> flags = {}) {
  DaemonOptions options;
  options.handlers = handlers;
  options.extra_env = std::move(env);
  options.extra_flags = std::move(flags);
  return options;
}

// Every handler answers GetStats: over new connections (SO_REUSEPORT spreads
// them), until each handler pid has answered one, at most 400 connections.
std::set<pid_t> HandlersThatAnswer(const std::string& address, size_t handlers) {
  std::set<pid_t> answered;
  for (int i = 0; i < 400 && answered.size() < handlers; ++i) {
    auto stub = NewStubOnOwnConnection(address);
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
    counters::v1::GetStatsResponse stats;
    if (stub->GetStats(&ctx, counters::v1::GetStatsRequest(), &stats).ok()) {
      answered.insert(stats.served_by_pid());
    }
  }
  return answered;
}

TEST(ReadinessTest, ReadyAfterEveryHandlerServesWatchdogKeepsComingStoppingOnSigterm) {
  NotifySocket notify;
  auto daemon = Daemon::Start(With(2, {notify.Env(), "WATCHDOG_USEC=400000"}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();

  ASSERT_TRUE(notify.WaitFor("READY=1", kWait)) << notify.Transcript() << (*daemon)->log();
  // READY=1 came with the status of a daemon whose handlers all serve, and
  // after the start-up's status lines.
  const std::string& ready = notify.received().back();
  EXPECT_THAT(ready, HasSubstr("STATUS=serving on "));
  EXPECT_THAT(ready, HasSubstr("2 of 2 handlers ready"));
  ASSERT_GE(notify.received().size(), 2u) << notify.Transcript();
  EXPECT_THAT(notify.received().front(), HasSubstr("STATUS=starting")) << notify.Transcript();
  // Only after the supervisor saw every handler ready: its "ready" line is
  // written before READY=1 is sent.
  EXPECT_EQ((*daemon)->LogLinesWithMsg("ready").size(), 1u) << (*daemon)->log();
  EXPECT_EQ((*daemon)->LogLinesWithMsg("notifying systemd").size(), 1u) << (*daemon)->log();
  // And the port serves, from every handler.
  std::vector<pid_t> handlers = (*daemon)->HandlerPids();
  ASSERT_EQ(handlers.size(), 2u);
  EXPECT_EQ(HandlersThatAnswer((*daemon)->address(), 2),
            std::set<pid_t>(handlers.begin(), handlers.end()));

  // WATCHDOG=1 keeps arriving (every 200 ms here): three more after READY.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(notify.WaitFor("WATCHDOG=1", kWait)) << i << "\n" << notify.Transcript();
  }

  absl::StatusOr<int> status = (*daemon)->Terminate();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << (*daemon)->log();
  ASSERT_TRUE(notify.WaitFor("STOPPING=1", kWait)) << notify.Transcript();
  EXPECT_THAT(notify.received().back(), HasSubstr("STATUS=stopping (SIGTERM)"));
  EXPECT_EQ(notify.Count("READY=1"), 1) << notify.Transcript();
}

TEST(ReadinessTest, AKilledHandlerShowsInStatusUntilItsRespawnServes) {
  NotifySocket notify;
  auto daemon = Daemon::Start(With(2, {notify.Env()}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE(notify.WaitFor("READY=1", kWait)) << notify.Transcript();
  std::vector<pid_t> handlers = (*daemon)->HandlerPids();
  ASSERT_EQ(handlers.size(), 2u);

  ASSERT_EQ(kill(handlers[0], SIGKILL), 0);
  const std::string listen = absl::StrCat("STATUS=serving on ", (*daemon)->address());
  ASSERT_TRUE(notify.WaitFor(absl::StrCat(listen, ": 1 of 2 handlers ready"), kWait))
      << notify.Transcript() << (*daemon)->log();
  ASSERT_TRUE(notify.WaitFor(absl::StrCat(listen, ": 2 of 2 handlers ready"), kWait))
      << notify.Transcript() << (*daemon)->log();
  // The respawn is no second READY=1; without WATCHDOG_USEC, no watchdog.
  EXPECT_EQ(notify.Count("READY=1"), 1) << notify.Transcript();
  EXPECT_EQ(notify.Count("WATCHDOG=1"), 0) << notify.Transcript();
}

TEST(ReadinessTest, SighupReloadIsReloadingThenReady) {
  NotifySocket notify;
  ScopedTempDir dir;
  const std::string auth = absl::StrCat(dir.path(), "/auth");
  std::ofstream(auth) << "token:sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                         " admin\n";
  auto daemon =
      Daemon::Start(With(1, {notify.Env()}, {absl::StrCat("--auth-file=", auth)}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE(notify.WaitFor("READY=1", kWait)) << notify.Transcript();

  ASSERT_EQ(kill((*daemon)->pid(), SIGHUP), 0);
  ASSERT_TRUE(notify.WaitFor("RELOADING=1", kWait)) << notify.Transcript();
  EXPECT_THAT(notify.received().back(), HasSubstr("MONOTONIC_USEC="));
  ASSERT_TRUE(notify.WaitFor("READY=1", kWait)) << notify.Transcript();
}

TEST(ReadinessTest, BadWatchdogSettingIsAWarningAndTheDaemonServes) {
  NotifySocket notify;
  auto daemon = Daemon::Start(With(1, {notify.Env(), "WATCHDOG_USEC=soon"}));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE(notify.WaitFor("READY=1", kWait)) << notify.Transcript();
  std::vector<std::string> warned = (*daemon)->LogLinesWithMsg("ignoring the systemd watchdog setting");
  ASSERT_EQ(warned.size(), 1u) << (*daemon)->log();
  EXPECT_EQ(JsonField(warned[0], "WATCHDOG_USEC"), "soon");
}

}  // namespace
}  // namespace countersd::testing
