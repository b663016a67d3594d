// e2e_load_client: one client process for the end-to-end load tests.
//
// Sends --count Increments of --shared_key (delta absent, i.e. 1) and, if
// given, --count Increments of --own_key (delta --own_delta), alternating,
// over a new TCP connection every --calls_per_channel calls. Each call has a
// deadline; a failed call is counted and the client goes on (until
// --max_failures, if set). Prints one line:
//   acked_shared=N acked_own=M failed=F
// and, with --values_out, writes the value returned by every acknowledged
// shared-key increment, one per line. Exit code 0 unless the flags are bad.
//
// It is a separate executable because gRPC must not be used in a process
// forked from one that already used it.
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "tests/e2e/daemon_harness.h"

ABSL_FLAG(std::string, address, "", "countersd address");
ABSL_FLAG(std::string, shared_key, "load/shared", "key every client increments");
ABSL_FLAG(std::string, own_key, "", "key only this client increments (empty: none)");
ABSL_FLAG(int64_t, own_delta, 1, "delta for own_key increments");
ABSL_FLAG(int, count, 5000, "increments per key");
ABSL_FLAG(int, calls_per_channel, 500, "calls before switching to a new connection");
ABSL_FLAG(int, deadline_ms, 10000, "deadline of each call");
ABSL_FLAG(uint64_t, max_failures, 0, "stop after this many failed calls (0: never)");
ABSL_FLAG(std::string, values_out, "", "file for the values of acknowledged shared increments");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_address);
  if (address.empty()) {
    std::fprintf(stderr, "--address is required\n");
    return 2;
  }
  const std::string shared_key = absl::GetFlag(FLAGS_shared_key);
  const std::string own_key = absl::GetFlag(FLAGS_own_key);
  const int64_t own_delta = absl::GetFlag(FLAGS_own_delta);
  const int count = absl::GetFlag(FLAGS_count);
  const int per_channel = std::max(1, absl::GetFlag(FLAGS_calls_per_channel));
  const int deadline_ms = absl::GetFlag(FLAGS_deadline_ms);

  std::string values;
  uint64_t acked_shared = 0, acked_own = 0, failed = 0;
  std::unique_ptr<counters::v1::CounterService::Stub> stub;
  int calls = 0;
  auto call = [&](const std::string& key, const int64_t* delta, int64_t* value) {
    if (calls++ % per_channel == 0) stub = countersd::testing::NewStubOnOwnConnection(address);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    counters::v1::IncrementRequest req;
    req.set_key(key);
    if (delta != nullptr) req.set_delta(*delta);
    counters::v1::IncrementResponse resp;
    grpc::Status status = stub->Increment(&ctx, req, &resp);
    if (!status.ok()) {
      ++failed;
      return false;
    }
    *value = resp.value();
    return true;
  };
  const uint64_t max_failures = absl::GetFlag(FLAGS_max_failures);
  for (int i = 0; i < count && (max_failures == 0 || failed < max_failures); ++i) {
    int64_t value;
    if (call(shared_key, nullptr, &value)) {
      ++acked_shared;
      absl::StrAppend(&values, value, "\n");
    }
    if (!own_key.empty() && call(own_key, &own_delta, &value)) ++acked_own;
  }
  if (const std::string path = absl::GetFlag(FLAGS_values_out); !path.empty()) {
    std::ofstream(path) << values;
  }
  std::printf("acked_shared=%llu acked_own=%llu failed=%llu\n",
              static_cast<unsigned long long>(acked_shared),
              static_cast<unsigned long long>(acked_own), static_cast<unsigned long long>(failed));
  return 0;
}
