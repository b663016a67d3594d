// fill_counters: creates (or bumps) the counters PREFIX0 .. PREFIX{N-1} of a
// running countersd with IncrementBatch calls of --batch keys each, in key
// order, one call at a time. tests/bench/run.sh uses it to give the daemon a
// table of 65,536 or 1,000,000 counters before timing snapshots and a
// restart. Prints one JSON object: {"counters":N,"seconds":S}.
//
//   fill_counters --addr=127.0.0.1:50051 --counters=1000000 [--prefix=counter:]
//                 [--delta=1] [--batch=1000]
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "tests/tool_flags.h"

int main(int argc, char** argv) {
  std::string addr;
  std::string prefix = "counter:";
  long long counters = 0, delta = 1, batch = 1000;
  countersd::testing::ToolFlags flags(
      "fill_counters",
      "Creates (or bumps) the counters PREFIX0 .. PREFIX{N-1} of a running countersd\n"
      "with IncrementBatch calls of --batch keys each, one call at a time.");
  flags.Required("addr", &addr, "HOST:PORT", "the daemon");
  flags.Required("counters", &counters, "N", "how many counters (>= 1)");
  flags.Add("prefix", &prefix, "PREFIX", "key prefix");
  flags.Add("delta", &delta, "D", "delta of every increment");
  flags.Add("batch", &batch, "N", "keys per IncrementBatch call (>= 1)");
  flags.Parse(argc, argv);
  if (counters < 1) flags.Fail("--counters must be >= 1");
  if (batch < 1) flags.Fail("--batch must be >= 1");

  countersd::ClientOptions options;
  options.timeout = absl::Seconds(30);
  countersd::CounterClient client(addr, options);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> keys;
  std::vector<countersd::IncrementOp> ops;
  for (long long first = 0; first < counters; first += batch) {
    const long long last = std::min(counters, first + batch);
    keys.clear();
    ops.clear();
    for (long long k = first; k < last; ++k) keys.push_back(prefix + std::to_string(k));
    for (const std::string& k : keys) ops.push_back({k, delta});
    absl::StatusOr<std::vector<int64_t>> r = client.IncrementBatch(ops);
    if (!r.ok()) {
      std::fprintf(stderr, "fill_counters: IncrementBatch of keys %lld..%lld: %s\n", first,
                   last - 1, r.status().ToString().c_str());
      return 1;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"counters\":%lld,\"seconds\":%.3f}\n", counters, seconds);
  return 0;
}
