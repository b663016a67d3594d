// The unix socket that pre-forks (issue 12): every handler serves calls
// that arrive on it; the file's mode and group; a stale socket file is
// replaced, a regular file and a live socket are refused; the file is
// removed at a clean shutdown.
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/transport/test_certs.h"

namespace countersd::testing {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::counters::v1;

class UnixSocketTest : public ::testing::Test {
 protected:
  std::string SocketPath() const { return absl::StrCat(dir_.path(), "/countersd.sock"); }
  std::string Listen() const { return absl::StrCat("127.0.0.1:0,unix:", SocketPath()); }

  absl::StatusOr<std::unique_ptr<Daemon>> Start(int handlers, std::vector<std::string> extra = {}) {
    DaemonOptions options;
    options.handlers = handlers;
    options.listen = Listen();
    options.extra_flags = std::move(extra);
    return Daemon::Start(options);
  }

  ScopedTempDir dir_;
};

absl::StatusOr<int32_t> ServedBy(v1::CounterService::Stub* stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
  v1::GetStatsResponse resp;
  grpc::Status s = stub->GetStats(&ctx, v1::GetStatsRequest(), &resp);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return resp.served_by_pid();
}

TEST_F(UnixSocketTest, EveryHandlerServesCallsArrivingOnTheSocket) {
  constexpr int kHandlers = 3;
  auto daemon = Start(kHandlers);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::vector<pid_t> handlers = (*daemon)->HandlerPids();
  ASSERT_EQ(handlers.size(), static_cast<size_t>(kHandlers));
  const std::set<int32_t> want(handlers.begin(), handlers.end());
  // Each new connection goes to whichever handler accepts it first; keep
  // them open (each stub its own connection) until every handler has
  // served one. 3 handlers are all seen within a few dozen connections;
  // 500 is a bound that only a handler that never accepts reaches.
  std::set<int32_t> seen;
  std::vector<std::unique_ptr<v1::CounterService::Stub>> open;
  for (int i = 0; i < 500 && seen != want; ++i) {
    open.push_back(NewStubOnOwnConnection(absl::StrCat("unix:", SocketPath())));
    absl::StatusOr<int32_t> pid = ServedBy(open.back().get());
    ASSERT_TRUE(pid.ok()) << pid.status();
    seen.insert(*pid);
  }
  EXPECT_EQ(seen, want) << "after " << open.size() << " connections";
  // TCP still works beside it.
  EXPECT_TRUE(ServedBy(NewStub((*daemon)->address()).get()).ok());
}

TEST_F(UnixSocketTest, SocketFileHasTheConfiguredModeAndGroup) {
  struct group* nogroup = getgrnam("nogroup");
  if (nogroup == nullptr) GTEST_SKIP() << "no group 'nogroup' on this host";
  const gid_t gid = nogroup->gr_gid;
  auto daemon = Start(1, {"--unix-socket-mode=0640", "--unix-socket-group=nogroup"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  struct stat st;
  ASSERT_EQ(stat(SocketPath().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_gid, gid);
}

TEST_F(UnixSocketTest, DefaultModeIs0660AndTheFileIsRemovedAtCleanShutdown) {
  auto daemon = Start(1);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  struct stat st;
  ASSERT_EQ(stat(SocketPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  absl::StatusOr<int> status = (*daemon)->Terminate();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_NE(lstat(SocketPath().c_str(), &st), 0) << "socket file left behind";
}

TEST_F(UnixSocketTest, StaleSocketFileIsReplaced) {
  // A socket file nobody listens on, as a crashed daemon leaves it.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, SocketPath().c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(fd);
  auto daemon = Start(2);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_TRUE((*daemon)->WaitForLog("replaced a stale unix socket file", absl::Seconds(1)));
  EXPECT_TRUE(ServedBy(NewStubOnOwnConnection(absl::StrCat("unix:", SocketPath())).get()).ok());
}

TEST_F(UnixSocketTest, RegularFileAtThePathIsRefusedAndKept) {
  WriteWholeFile(SocketPath(), "precious\n");
  ScopedTempDir data;
  absl::StatusOr<CommandResult> r = RunCommand(
      {CountersdPath(), "--listen=" + Listen(), "--data-dir=" + data.path(), "--handlers=1"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_THAT(r->err, HasSubstr(SocketPath()));
  EXPECT_THAT(r->err, HasSubstr("is not a socket"));
  EXPECT_EQ(ReadWholeFile(SocketPath()), "precious\n");
}

TEST_F(UnixSocketTest, SocketServedByAnotherDaemonIsRefused) {
  auto first = Start(1);
  ASSERT_TRUE(first.ok()) << first.status();
  ScopedTempDir other_data;
  absl::StatusOr<CommandResult> r = RunCommand({CountersdPath(), "--listen=unix:" + SocketPath(),
                                                "--data-dir=" + other_data.path(), "--handlers=1"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_THAT(r->err, HasSubstr("another process serves this socket"));
  // The first daemon's socket still works.
  EXPECT_TRUE(ServedBy(NewStubOnOwnConnection(absl::StrCat("unix:", SocketPath())).get()).ok());
}

TEST(ProtectedModeTest, NetworkAddressWithoutTlsOrAuthIsRefusedSayingHowToFixIt) {
  ScopedTempDir data;
  absl::StatusOr<CommandResult> r =
      RunCommand({CountersdPath(), "--listen=0.0.0.0:0", "--data-dir=" + data.path()});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_THAT(r->err, HasSubstr("protected mode"));
  EXPECT_THAT(r->err, HasSubstr("--tls-cert-file"));
  EXPECT_THAT(r->err, HasSubstr("--auth-file"));
  EXPECT_THAT(r->err, HasSubstr("--allow-unauthenticated-network-access"));
}

TEST(ProtectedModeTest, ExplicitOptOutStartsWithAWarning) {
  DaemonOptions options;
  options.handlers = 1;
  options.listen = "0.0.0.0:0";
  options.extra_flags = {"--allow-unauthenticated-network-access"};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::string log = (*daemon)->log();
  EXPECT_THAT(log, HasSubstr("protected mode is off"));
  EXPECT_THAT(log, HasSubstr("\"level\":\"warning\""));
}

TEST(ProtectedModeTest, LoopbackAndUnixNeedNoOptOutAndLogNoWarning) {
  ScopedTempDir dir;
  DaemonOptions options;
  options.handlers = 1;
  options.listen = absl::StrCat("127.0.0.1:0,[::1]:0,unix:", dir.path(), "/s.sock");
  auto daemon = Daemon::Start(options);
  if (!daemon.ok() && absl::StrContains(daemon.status().message(), "::1")) {
    GTEST_SKIP() << "no IPv6 loopback here: " << daemon.status();
  }
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_THAT((*daemon)->log(), ::testing::Not(HasSubstr("protected mode")));
}

}  // namespace
}  // namespace countersd::testing
