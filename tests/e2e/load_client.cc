// e2e_load_client: one client process for the end-to-end load tests.
//
// Sends --count Increments of --shared_key (delta absent, i.e. 1) and, if
// given, --count Increments of --own_key (delta --own_delta), alternating,
// over a new TCP connection every --calls_per_channel calls. Each call has a
// deadline; a failed call is counted and the client goes on (until
// --max_failures, if set). Prints one line:
//   acked_shared=N acked_own=M failed=F
// and, with --values_out, writes the value returned by every acknowledged
// shared-key increment, one per line. Exit code 0, or 2 if the flags are bad
// (tests/tool_flags.h; --help lists them).
//
// It is a separate executable because gRPC must not be used in a process
// forked from one that already used it.
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/tool_flags.h"

int main(int argc, char** argv) {
  std::string address;
  std::string shared_key = "load/shared";
  std::string own_key;
  int64_t own_delta = 1;
  int count = 5000;
  int calls_per_channel = 500;
  int deadline_ms = 10000;
  uint64_t max_failures = 0;
  std::string values_out;
  countersd::testing::ToolFlags flags(
      "e2e_load_client",
      "One client process of the end-to-end load tests: --count Increments of\n"
      "--shared_key (and of --own_key), a new connection every --calls_per_channel\n"
      "calls. Prints acked_shared=N acked_own=M failed=F.");
  flags.Required("address", &address, "HOST:PORT", "countersd address");
  flags.Add("shared_key", &shared_key, "KEY", "key every client increments");
  flags.Add("own_key", &own_key, "KEY", "key only this client increments (empty: none)");
  flags.Add("own_delta", &own_delta, "D", "delta for own_key increments");
  flags.Add("count", &count, "N", "increments per key");
  flags.Add("calls_per_channel", &calls_per_channel, "N",
            "calls before switching to a new connection");
  flags.Add("deadline_ms", &deadline_ms, "MS", "deadline of each call");
  flags.Add("max_failures", &max_failures, "N", "stop after this many failed calls (0: never)");
  flags.Add("values_out", &values_out, "PATH",
            "file for the values of acknowledged shared increments");
  flags.Parse(argc, argv);
  const int per_channel = std::max(1, calls_per_channel);

  std::string values;
  uint64_t acked_shared = 0, acked_own = 0, failed = 0;
  std::unique_ptr<counters::v1::CounterService::Stub> stub;
  int calls = 0;
  auto call = [&](const std::string& key, const int64_t* delta, int64_t* value) {
    if (calls++ % per_channel == 0) stub = countersd::testing::NewStubOnOwnConnection(address);
    grpc::ClientContext ctx;
    ctx.set_deadline(countersd::GrpcDeadlineAfter(absl::Milliseconds(deadline_ms)));
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
  for (int i = 0; i < count && (max_failures == 0 || failed < max_failures); ++i) {
    int64_t value;
    if (call(shared_key, nullptr, &value)) {
      ++acked_shared;
      absl::StrAppend(&values, value, "\n");
    }
    if (!own_key.empty() && call(own_key, &own_delta, &value)) ++acked_own;
  }
  if (!values_out.empty()) std::ofstream(values_out) << values;
  std::printf("acked_shared=%llu acked_own=%llu failed=%llu\n",
              static_cast<unsigned long long>(acked_shared),
              static_cast<unsigned long long>(acked_own), static_cast<unsigned long long>(failed));
  return 0;
}
