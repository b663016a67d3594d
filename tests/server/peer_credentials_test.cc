// The unix peer's uid, per call (server/peer_credentials.h), on a real gRPC
// server fed through AddInsecureChannelFromFd as the handlers feed theirs:
// what ServerContext::peer() really is for such a connection ("fd:<n>"),
// and that the uid recorded at the hand-over is found from it.
#include "server/peer_credentials.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/server_posix.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"

namespace countersd {
namespace {

namespace health = ::grpc::health::v1;

// Records the peer() and the uid found for it, of each call.
class PeerRecordingHealth final : public health::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* context, const health::HealthCheckRequest*,
                     health::HealthCheckResponse* response) override {
    absl::MutexLock lock(&mu_);
    peer_ = context->peer();
    uid_ = UnixPeerUid(peer_);
    response->set_status(health::HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
  std::string peer() {
    absl::MutexLock lock(&mu_);
    return peer_;
  }
  std::optional<uid_t> uid() {
    absl::MutexLock lock(&mu_);
    return uid_;
  }

 private:
  absl::Mutex mu_;
  std::string peer_;
  std::optional<uid_t> uid_;
};

class PeerCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(); }

  // A connection over a socketpair, the server's end handed over after
  // `record(fd)`; returns the server end's fd and makes one Check call.
  int CallOverSocketPair(void (*record)(int fd)) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    record(fds[0]);
    grpc::AddInsecureChannelFromFd(server_.get(), fds[0]);
    auto channel = grpc::CreateInsecureChannelFromFd("", fds[1]);
    auto stub = health::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
    health::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, health::HealthCheckRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return fds[0];
  }

  PeerRecordingHealth service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(PeerCredentialsTest, FdChannelPeerIsFdNumberAndGivesTheRecordedUid) {
  int fd = CallOverSocketPair([](int fd) { ASSERT_TRUE(RecordUnixPeer(fd).ok()); });
  EXPECT_EQ(service_.peer(), "fd:" + std::to_string(fd));
  ASSERT_TRUE(service_.uid().has_value()) << service_.peer();
  EXPECT_EQ(*service_.uid(), getuid());
}

TEST_F(PeerCredentialsTest, ConnectionRecordedAsTcpHasNoUid) {
  int fd = CallOverSocketPair([](int fd) {
    ASSERT_TRUE(RecordUnixPeer(fd).ok());  // an earlier unix connection on this number
    ForgetPeer(fd);                        // then a TCP one accepted on it
  });
  EXPECT_EQ(service_.peer(), "fd:" + std::to_string(fd));
  EXPECT_FALSE(service_.uid().has_value());
}

TEST(PeerCredentials, PeersThatAreNotFdChannelsHaveNoUid) {
  EXPECT_FALSE(UnixPeerUid("ipv4:127.0.0.1:5000").has_value());
  EXPECT_FALSE(UnixPeerUid("ipv6:[::1]:5000").has_value());
  EXPECT_FALSE(UnixPeerUid("fd:").has_value());
  EXPECT_FALSE(UnixPeerUid("fd:-1").has_value());
  EXPECT_FALSE(UnixPeerUid("fd:999999").has_value());
}

}  // namespace
}  // namespace countersd
