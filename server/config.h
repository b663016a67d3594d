// countersd's command-line configuration: the flags, their defaults and
// their validation. The flags are defined (ABSL_FLAG) in config.cc only.
#ifndef COUNTERSD_SERVER_CONFIG_H_
#define COUNTERSD_SERVER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "shared/limits.h"
#include "shared/log.h"

namespace countersd {

struct Config {
  std::string listen = "127.0.0.1:50051";  // host:port, [v6]:port; port 0 = any free port
  std::string data_dir = "./var";
  uint64_t capacity = 1000000;  // used only when a table is created
  int handlers = 1;             // gRPC handler processes
  absl::Duration snapshot_interval = absl::Seconds(1);
  LogFormat log_format = LogFormat::kText;
  LogLevel log_level = LogLevel::kInfo;
  absl::Duration drain_timeout = absl::Seconds(5);
  size_t max_batch = 1000;  // IncrementBatch / BatchGet entries per call
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
