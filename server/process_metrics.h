// The standard process_* metrics of one process of the daemon, read by the
// aggregator from /proc/<pid>/ (as Prometheus's client libraries read
// /proc/self/): CPU time and start time from stat, resident and virtual
// memory from stat, open descriptors by listing fd/, their limit from
// limits. Any process of the same user can be read. gRPC-free.
#ifndef COUNTERSD_SERVER_PROCESS_METRICS_H_
#define COUNTERSD_SERVER_PROCESS_METRICS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace countersd {

struct ProcessSample {
  double cpu_seconds = 0;           // user + system (process_cpu_seconds_total)
  uint64_t resident_bytes = 0;      // process_resident_memory_bytes
  uint64_t virtual_bytes = 0;       // process_virtual_memory_bytes
  double start_time_seconds = 0;    // unix time (process_start_time_seconds)
  uint64_t open_fds = 0;            // process_open_fds
  std::optional<uint64_t> max_fds;  // soft RLIMIT_NOFILE; none when unlimited
};

// `pid`'s sample, under `proc` (a test's made-up tree; "/proc" otherwise).
// NOT_FOUND when the process is gone; other errors name the file.
absl::StatusOr<ProcessSample> ReadProcessSample(pid_t pid, const std::string& proc = "/proc");

}  // namespace countersd

#endif  // COUNTERSD_SERVER_PROCESS_METRICS_H_
