// The auth file's certificate and uid principals (issue 12), end to end:
// the transport names the caller (a verified mTLS client certificate's CN,
// a unix peer's uid), the auth file gives it a role and key prefixes.
//  - cert:CN=alice with role read, over mTLS: reads are served, writes are
//    PERMISSION_DENIED.
//  - uid:<this test's uid> with role write and prefix local/, over the unix
//    socket: in-scope increments are served, out-of-scope ones and
//    Snapshot (admin) are PERMISSION_DENIED, and nothing was applied; the
//    same call over TCP carries no uid and is UNAUTHENTICATED.
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/channel.h"
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

grpc::Status Increment(v1::CounterService::Stub* stub, const std::string& key) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
  v1::IncrementRequest req;
  req.set_key(key);
  v1::IncrementResponse resp;
  return stub->Increment(&ctx, req, &resp);
}

// The value of `key`, or -1 when it does not exist (a failed call fails the test).
int64_t ValueOf(v1::CounterService::Stub* stub, const std::string& key) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
  v1::GetRequest req;
  req.set_key(key);
  v1::GetResponse resp;
  grpc::Status s = stub->Get(&ctx, req, &resp);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return -1;
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.value();
}

TEST(PrincipalsTest, CertificateCommonNameGetsItsRoleOverMtls) {
  ScopedTempDir dir;
  auto certs = MakeTestCerts(dir.path());
  ASSERT_TRUE(certs.ok()) << certs.status();
  const std::string auth = absl::StrCat(dir.path(), "/auth");
  WriteWholeFile(auth, "cert:CN=alice   read\n");
  DaemonOptions options;
  options.extra_flags = {absl::StrCat("--tls-cert-file=", certs->server_crt),
                         absl::StrCat("--tls-key-file=", certs->server_key),
                         absl::StrCat("--tls-client-ca-file=", certs->ca_crt),
                         absl::StrCat("--auth-file=", auth)};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto channel = CreateCounterChannel((*daemon)->address(),
                                      {.ca_file = certs->ca_crt,
                                       .cert_file = certs->client_crt,
                                       .key_file = certs->client_key});
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto alice = v1::CounterService::NewStub(*channel);

  EXPECT_EQ(ValueOf(alice.get(), "any/key"), -1);  // read: served (NOT_FOUND, not refused)
  grpc::Status write = Increment(alice.get(), "any/key");
  EXPECT_EQ(write.error_code(), grpc::StatusCode::PERMISSION_DENIED) << write.error_message();
  EXPECT_THAT(write.error_message(), HasSubstr("Increment"));
  EXPECT_EQ(ValueOf(alice.get(), "any/key"), -1);
}

TEST(PrincipalsTest, UnixPeerUidGetsItsRoleAndPrefixesAndTcpCarriesNoUid) {
  ScopedTempDir dir;
  const std::string auth = absl::StrCat(dir.path(), "/auth");
  WriteWholeFile(auth, absl::StrCat("uid:", getuid(), "   write   local/\n"));
  const std::string socket = absl::StrCat(dir.path(), "/countersd.sock");
  DaemonOptions options;
  options.listen = absl::StrCat("127.0.0.1:0,unix:", socket);
  options.extra_flags = {absl::StrCat("--auth-file=", auth)};
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto local = NewStubOnOwnConnection(absl::StrCat("unix:", socket));

  EXPECT_TRUE(Increment(local.get(), "local/a").ok());
  EXPECT_TRUE(Increment(local.get(), "local/a").ok());
  grpc::Status outside = Increment(local.get(), "other/a");
  EXPECT_EQ(outside.error_code(), grpc::StatusCode::PERMISSION_DENIED) << outside.error_message();
  EXPECT_THAT(outside.error_message(), HasSubstr("other/a"));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(10)));
    v1::SnapshotResponse resp;
    grpc::Status snap = local->Snapshot(&ctx, v1::SnapshotRequest(), &resp);
    EXPECT_EQ(snap.error_code(), grpc::StatusCode::PERMISSION_DENIED) << snap.error_message();
  }
  EXPECT_EQ(ValueOf(local.get(), "local/a"), 2);

  // TCP: the same process, but no uid travels with it.
  auto tcp = NewStub((*daemon)->address());
  grpc::Status unauthenticated = Increment(tcp.get(), "local/a");
  EXPECT_EQ(unauthenticated.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << unauthenticated.error_message();
  EXPECT_EQ(ValueOf(local.get(), "local/a"), 2);
}

}  // namespace
}  // namespace countersd::testing
