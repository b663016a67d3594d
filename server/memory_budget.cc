#include "server/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace countersd {
namespace {

// The cgroup v2 memory.max of this process: the "0::<path>" line of
// /proc/self/cgroup names its cgroup under /sys/fs/cgroup. "max" (no limit),
// a cgroup v1 host or anything unreadable is nullopt.
std::optional<uint64_t> CgroupMemoryMax() {
  std::ifstream cgroup("/proc/self/cgroup");
  std::string line;
  while (std::getline(cgroup, line)) {
    if (!absl::StartsWith(line, "0::")) continue;
    std::ifstream max_file(absl::StrCat("/sys/fs/cgroup", line.substr(3), "/memory.max"));
    std::string value;
    uint64_t bytes = 0;
    if (max_file >> value && absl::SimpleAtoi(value, &bytes) && bytes > 0) return bytes;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

uint64_t MemoryLimitBytes() {
  if (std::optional<uint64_t> max = CgroupMemoryMax()) return *max;
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) return static_cast<uint64_t>(pages) * page_size;
  return uint64_t{1} << 30;  // unknown: assume the manifests' 1 GiB
}

// Why memory_limit / 32: the Kubernetes manifest gives the container 1 GiB
// and, for the default capacity, ~575 MB of it is the map and snapshot
// files' page cache; what is left is ~64 MiB for each of up to 4 handlers
// and the aggregator (deploy/k8s/statefulset.yaml's comment). Half of a
// handler's 64 MiB goes to gRPC's buffers (this quota), half to the rest of
// the process (code, heap, protobuf). 1 GiB / 32 = 32 MiB, also the ceiling:
// more would not fit under the documented 64 MiB per handler. The floor,
// 4 MiB, keeps a handler able to serve a few hundred connections in a tiny
// container; there the operator should run fewer handlers.
size_t DefaultHandlerMemoryQuota(uint64_t memory_limit) {
  return static_cast<size_t>(std::clamp<uint64_t>(memory_limit / 32, kMinHandlerMemoryQuota,
                                                  kMaxDefaultHandlerMemoryQuota));
}

// Why quota / kConnectionCostEstimate: connections beyond what the quota can
// pay for would only be closed again by gRPC's reclaimer under memory
// pressure; refusing them at accept is cheaper and says why.
int DefaultMaxConnections(size_t handler_memory_quota) {
  return static_cast<int>(std::max<size_t>(1, handler_memory_quota / kConnectionCostEstimate));
}

}  // namespace countersd
