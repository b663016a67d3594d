// Issue 3, test 8: interop with an independent gRPC stack.
//
// Each test starts the real countersd (tests/e2e harness), generates Python
// stubs from the repository's protos AT TEST TIME with Debian's protoc and
// grpc_python_plugin into a temporary directory, and runs one check of
// interop_client.py under Debian's /usr/bin/python3 (python3-grpcio). The
// check's output is shown when it fails. A last test does the same with
// Node's @grpc/grpc-js (interop_client.js).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/bearer_token.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/transport/test_certs.h"

namespace countersd::testing {
namespace {

constexpr int kHandlers = 2;
constexpr uint64_t kCapacity = 5000;
constexpr int kMaxBatch = 50;

// Generates the Python stubs into `dir`.
void GenerateStubs(const std::string& dir) {
  // protoc -I proto -I proto/grpc -I tests/interop/protos --python_out=D
  //   --grpc_out=D --plugin=protoc-gen-grpc=grpc_python_plugin <protos>
  //
  // The protos are the repository's own: proto/counters/v1/counters.proto
  // and proto/grpc/health/v1/health.proto, the same files the server and
  // the client are built from. health.proto is compiled as
  // health/v1/health.proto (-I proto/grpc), so that its Python module is
  // health.v1.health_pb2: under its own path it would be
  // grpc.health.v1.health_pb2, inside the `grpc` package that
  // python3-grpcio already owns. tests/interop/protos holds only
  // reflection.proto, which nothing else builds: the server's reflection
  // comes compiled in Debian's libgrpc++_reflection (without its .proto),
  // and Debian ships no Python reflection package.
  auto gen = RunCommand({PROTOC_PATH, absl::StrCat("-I", COUNTERSD_SOURCE_DIR, "/proto"),
                         absl::StrCat("-I", COUNTERSD_SOURCE_DIR, "/proto/grpc"),
                         absl::StrCat("-I", COUNTERSD_SOURCE_DIR, "/tests/interop/protos"),
                         absl::StrCat("--python_out=", dir),
                         absl::StrCat("--grpc_out=", dir),
                         absl::StrCat("--plugin=protoc-gen-grpc=", GRPC_PYTHON_PLUGIN_PATH),
                         "counters/v1/counters.proto", "health/v1/health.proto",
                         "reflection/v1alpha/reflection.proto"});
  ASSERT_TRUE(gen.ok()) << gen.status();
  ASSERT_EQ(gen->exit_code, 0) << "protoc failed:\n" << gen->out << gen->err;
}

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override { StartDaemon({}); }

  void StartDaemon(const std::vector<std::string>& extra_flags) {
    DaemonOptions options;
    options.handlers = kHandlers;
    options.capacity = kCapacity;
    options.extra_flags = {absl::StrCat("--max-batch=", kMaxBatch)};
    for (const std::string& f : extra_flags) options.extra_flags.push_back(f);
    auto daemon = Daemon::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);

    GenerateStubs(stubs_.path());
  }

  // Runs `check` of interop_client.py against the daemon; passes if it exits 0.
  void RunCheck(const std::string& check, const std::vector<std::string>& extra_args = {}) {
    std::vector<std::string> argv = {
        PYTHON3_PATH, absl::StrCat(COUNTERSD_SOURCE_DIR, "/tests/interop/interop_client.py"),
        absl::StrCat("--address=", daemon_->address()), absl::StrCat("--stubs=", stubs_.path()),
        absl::StrCat("--handlers=", kHandlers), absl::StrCat("--capacity=", kCapacity),
        absl::StrCat("--max-batch=", kMaxBatch)};
    for (const std::string& a : extra_args) argv.push_back(a);
    argv.push_back(check);
    auto run = RunCommand(argv, absl::Seconds(120), {"PYTHONDONTWRITEBYTECODE=1"});
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->exit_code, 0) << "python client:\n"
                                 << run->out << run->err << "\ndaemon log:\n"
                                 << daemon_->log();
    std::cout << run->out;
  }

  ScopedTempDir stubs_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(InteropTest, PythonThreadsIncrementConcurrentlyAndReadBackExactTotals) {
  RunCheck("concurrent_increments");
}

TEST_F(InteropTest, PythonSeesEveryErrorCodeOfTheContract) { RunCheck("status_codes"); }

TEST_F(InteropTest, PythonSeesOptionalFieldPresence) { RunCheck("optional_fields"); }

TEST_F(InteropTest, PythonRawNonUtf8KeyAndMalformedRequestAreInvalidArgument) {
  RunCheck("non_utf8_requests");
}

TEST_F(InteropTest, PythonRoundTripsEveryRpc) { RunCheck("api_roundtrip"); }

TEST_F(InteropTest, PythonIncrementStreamAnswersInOrderAndAFailedMessageIsAlone) {
  RunCheck("increment_stream");
}

TEST_F(InteropTest, PythonRawIncrementStreamNonUtf8KeyAndMalformedMessage) {
  RunCheck("increment_stream_raw");
}

// Exactly-once writes (WriteOptions): a duplicate applied once with its
// original response, a used sequence with another request, a failed write
// not remembered; the window's edge and an unknown session.
TEST_F(InteropTest, PythonResentSessionWritesApplyOnceWithTheirFirstResponse) {
  RunCheck("session_duplicates");
}

TEST_F(InteropTest, PythonSequencesBelowTheWindowAndUnknownSessionsAreFailedPrecondition) {
  RunCheck("session_window");
}

TEST_F(InteropTest, PythonHealthCheckReportsServing) { RunCheck("health"); }

TEST_F(InteropTest, ReflectionServesTheRepositoryProto) { RunCheck("reflection"); }

// Issue 12: the Python client with bearer tokens against --auth-file.
class InteropAuthTest : public InteropTest {
 protected:
  void SetUp() override {
    const std::string auth_file = absl::StrCat(auth_dir_.path(), "/auth");
    std::ofstream(auth_file) << TokenPrincipal(kWriteToken) << " write py/\n"
                             << TokenPrincipal(kReadToken) << " read\n";
    StartDaemon({absl::StrCat("--auth-file=", auth_file)});
  }
  static constexpr char kWriteToken[] = "interop-write-token";
  static constexpr char kReadToken[] = "interop-read-token";
  ScopedTempDir auth_dir_;
};

TEST_F(InteropAuthTest, PythonSendsTokensAndSeesRolesAndScopes) {
  RunCheck("tokens", {absl::StrCat("--token=", kWriteToken),
                      absl::StrCat("--read-token=", kReadToken)});
}

// Under CI=true a missing stack fails the test instead of skipping it, so
// that CI never passes without running it. Elsewhere it is skipped with the
// reason.
bool RunningUnderCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

// A third stack: @grpc/grpc-js (pure JavaScript HTTP/2) with
// @grpc/proto-loader, installed from npm at test time into a temporary
// directory (pinned major versions). When node/npm are missing or the npm
// registry cannot be reached it is skipped, saying why (it is an extra stack,
// not a dependency of the build), except under CI=true, where it fails.
TEST_F(InteropTest, GrpcJsClientIncrementsConcurrentlyAndSeesTheContract) {
  if (std::string(NODE_BIN).empty() || std::string(NPM_BIN).empty()) {
    const std::string why =
        absl::StrCat("node or npm is not installed (node: '", NODE_BIN, "', npm: '", NPM_BIN,
                     "'; CMake looks for them at configure time)");
    if (RunningUnderCi()) FAIL() << "CI=true, so this test must run, but " << why;
    GTEST_SKIP() << why;
  }
  ScopedTempDir modules;
  auto install = RunCommand(
      {NPM_BIN, "install", "--prefix", modules.path(), "--no-save", "--no-audit", "--no-fund",
       "--ignore-scripts", "--loglevel=error", "@grpc/grpc-js@1", "@grpc/proto-loader@0.8"},
      absl::Seconds(90));
  if (!install.ok() || install->exit_code != 0) {
    const std::string why =
        absl::StrCat("npm install of @grpc/grpc-js failed (npm registry unreachable?): ",
                     install.ok() ? install->err : install.status().ToString());
    if (RunningUnderCi()) FAIL() << "CI=true, so this test must run, but " << why;
    GTEST_SKIP() << why;
  }
  auto run =
      RunCommand({NODE_BIN, absl::StrCat(COUNTERSD_SOURCE_DIR, "/tests/interop/interop_client.js"),
                  absl::StrCat("--address=", daemon_->address()),
                  absl::StrCat("--proto=", COUNTERSD_SOURCE_DIR, "/proto"), "concurrent_increments",
                  "status_codes", "optional_fields"},
                 absl::Seconds(60), {absl::StrCat("NODE_PATH=", modules.path(), "/node_modules")});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << "node client:\n" << run->out << run->err;
  std::cout << run->out;
}

// Over TLS and mTLS (issue 12): the Python client verifies the server
// against the test CA and, under mTLS, presents a client certificate; a
// plaintext client and (under mTLS) a client without a certificate are
// refused. Certificates are made at test time with openssl.
class InteropTlsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    GenerateStubs(stubs_.path());
    if (HasFatalFailure()) return;
    auto certs = MakeTestCerts(cert_dir_.path());
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = *certs;
    DaemonOptions options;
    options.handlers = kHandlers;
    options.capacity = kCapacity;
    options.extra_flags = {absl::StrCat("--max-batch=", kMaxBatch),
                           absl::StrCat("--tls-cert-file=", certs_.server_crt),
                           absl::StrCat("--tls-key-file=", certs_.server_key)};
    if (GetParam()) {
      options.extra_flags.push_back(absl::StrCat("--tls-client-ca-file=", certs_.ca_crt));
    }
    auto daemon = Daemon::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
  }

  void RunChecks(const std::vector<std::string>& checks) {
    std::vector<std::string> argv = {
        PYTHON3_PATH, absl::StrCat(COUNTERSD_SOURCE_DIR, "/tests/interop/interop_client.py"),
        absl::StrCat("--address=", daemon_->address()), absl::StrCat("--stubs=", stubs_.path()),
        absl::StrCat("--handlers=", kHandlers), absl::StrCat("--capacity=", kCapacity),
        absl::StrCat("--max-batch=", kMaxBatch), absl::StrCat("--cacert=", certs_.ca_crt)};
    if (GetParam()) {
      argv.push_back(absl::StrCat("--cert=", certs_.client_crt));
      argv.push_back(absl::StrCat("--key=", certs_.client_key));
    }
    argv.insert(argv.end(), checks.begin(), checks.end());
    auto run = RunCommand(argv, absl::Seconds(120), {"PYTHONDONTWRITEBYTECODE=1"});
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->exit_code, 0) << "python client:\n"
                                 << run->out << run->err << "\ndaemon log:\n"
                                 << daemon_->log();
    std::cout << run->out;
  }

  ScopedTempDir stubs_, cert_dir_;
  TestCerts certs_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_P(InteropTlsTest, PythonIncrementsRoundTripsAndIsRefusedWithoutCredentials) {
  RunChecks({"concurrent_increments", "api_roundtrip", "status_codes", "tls_refusals"});
}

INSTANTIATE_TEST_SUITE_P(TlsAndMtls, InteropTlsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Mtls" : "Tls";
                         });

}  // namespace
}  // namespace countersd::testing
