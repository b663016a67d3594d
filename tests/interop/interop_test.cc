// Issue 3, test 8: interop with an independent gRPC stack.
//
// Each test starts the real countersd (tests/e2e harness), generates Python
// stubs from the repository's protos AT TEST TIME with Debian's protoc and
// grpc_python_plugin into a temporary directory, and runs one check of
// interop_client.py under Debian's /usr/bin/python3 (python3-grpcio). The
// check's output is shown when it fails.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

constexpr int kHandlers = 2;
constexpr uint64_t kCapacity = 5000;
constexpr int kMaxBatch = 50;

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonOptions options;
    options.handlers = kHandlers;
    options.capacity = kCapacity;
    options.extra_flags = {absl::StrCat("--max-batch=", kMaxBatch)};
    auto daemon = Daemon::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);

    // protoc -I proto -I tests/interop/protos --python_out=D --grpc_out=D
    //   --plugin=protoc-gen-grpc=grpc_python_plugin <protos>
    auto gen = RunCommand({PROTOC_PATH, absl::StrCat("-I", COUNTERSD_SOURCE_DIR, "/proto"),
                           absl::StrCat("-I", COUNTERSD_SOURCE_DIR, "/tests/interop/protos"),
                           absl::StrCat("--python_out=", stubs_.path()),
                           absl::StrCat("--grpc_out=", stubs_.path()),
                           absl::StrCat("--plugin=protoc-gen-grpc=", GRPC_PYTHON_PLUGIN_PATH),
                           "counters/v1/counters.proto", "health/v1/health.proto",
                           "reflection/v1alpha/reflection.proto"});
    ASSERT_TRUE(gen.ok()) << gen.status();
    ASSERT_EQ(gen->exit_code, 0) << "protoc failed:\n" << gen->out << gen->err;
  }

  // Runs `check` of interop_client.py against the daemon; passes if it exits 0.
  void RunCheck(const std::string& check) {
    auto run = RunCommand(
        {PYTHON3_PATH, absl::StrCat(COUNTERSD_SOURCE_DIR, "/tests/interop/interop_client.py"),
         absl::StrCat("--address=", daemon_->address()), absl::StrCat("--stubs=", stubs_.path()),
         absl::StrCat("--handlers=", kHandlers), absl::StrCat("--capacity=", kCapacity),
         absl::StrCat("--max-batch=", kMaxBatch), check},
        absl::Seconds(120), {"PYTHONDONTWRITEBYTECODE=1"});
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

TEST_F(InteropTest, PythonRoundTripsEveryRpc) { RunCheck("api_roundtrip"); }

TEST_F(InteropTest, PythonHealthCheckReportsServing) { RunCheck("health"); }

TEST_F(InteropTest, ReflectionServesTheRepositoryProto) { RunCheck("reflection"); }

}  // namespace
}  // namespace countersd::testing
