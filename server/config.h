// countersd's command-line configuration: the flags, their defaults and
// their validation. The flags are defined (ABSL_FLAG) in config.cc only;
// their defaults are those of Config below, and the limits their --help
// text states come from shared/limits.h.
#ifndef COUNTERSD_SERVER_CONFIG_H_
#define COUNTERSD_SERVER_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "shared/limits.h"
#include "shared/log.h"

namespace countersd {

// The defaults: the one home of each, for Config, the flags and their help.
inline constexpr char kDefaultListen[] = "127.0.0.1:50051";
inline constexpr char kDefaultDataDir[] = "./var";
inline constexpr uint64_t kDefaultCapacity = 1000000;
inline constexpr absl::Duration kDefaultSnapshotInterval = absl::Seconds(1);
inline constexpr absl::Duration kDefaultDrainTimeout = absl::Seconds(5);
// The table's limit: clients may send the largest batch the table can apply.
inline constexpr size_t kDefaultMaxBatch = kMaxBatchOps;
// Shortest --snapshot-interval accepted.
inline constexpr absl::Duration kMinSnapshotInterval = absl::Milliseconds(10);

// The default number of handler processes: the CPUs this process may run on.
int DefaultHandlerCount();

struct Config {
  std::string listen = kDefaultListen;  // host:port, [v6]:port; port 0 = any free port
  std::string data_dir = kDefaultDataDir;
  uint64_t capacity = kDefaultCapacity;  // used only when a table is created
  int handlers = DefaultHandlerCount();  // gRPC handler processes
  absl::Duration snapshot_interval = kDefaultSnapshotInterval;
  LogFormat log_format = LogFormat::kText;
  LogLevel log_level = LogLevel::kInfo;
  absl::Duration drain_timeout = kDefaultDrainTimeout;
  size_t max_batch = kDefaultMaxBatch;  // IncrementBatch / BatchGet entries per call
  bool trust_untrusted_map = false;
};

// Parses argv. `--help` (or -h, --helpfull, --helpshort) prints the flags of
// countersd and exits 0. An unknown flag, a positional argument or a bad
// value prints a message naming it and exits 2. Returns the validated
// configuration otherwise.
Config ParseFlagsOrExit(int argc, char** argv);

// Checks values that each parse but do not make sense (e.g. --handlers=0).
// INVALID_ARGUMENT naming the flag and the allowed range.
absl::Status ValidateConfig(const Config& config);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CONFIG_H_
