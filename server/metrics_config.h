// The /metrics endpoint's flags: where the aggregator serves it
// (--metrics-listen) and which counters it exports as gauges
// (--metrics-export-prefix, --metrics-export-max). Defined, read and
// validated in metrics_config.cc; listed in --help by config.cc with the
// other flags, and so also COUNTERSD_METRICS_* (flag_environment.h).
// gRPC-free (the supervisor includes it).
//
// Loopback by default: the metrics name keys (the exported counters, and
// the load on each method), so serving them beyond the host is the
// operator's explicit choice (--metrics-listen=0.0.0.0:50052, or a
// Prometheus on the same host or pod).
#ifndef COUNTERSD_SERVER_METRICS_CONFIG_H_
#define COUNTERSD_SERVER_METRICS_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace countersd {

inline constexpr char kDefaultMetricsListen[] = "127.0.0.1:50052";
// Exported counters per scrape at most, by default: a scrape of 1,000
// series is well within what one Prometheus target is expected to carry.
inline constexpr int64_t kDefaultMetricsExportMax = 1000;
inline constexpr int64_t kMaxMetricsExportMax = 100000;

// The flags' names, as config.cc lists them (--help, the environment).
#define COUNTERSD_METRICS_FLAG_NAMES "metrics_listen", "metrics_export_prefix", "metrics_export_max"

struct MetricsConfig {
  // Numeric host:port or [v6]:port (port 0: any free port); empty: no
  // /metrics endpoint.
  std::string listen = kDefaultMetricsListen;
  // The keys under any of these are exported (countersd_counter_value),
  // at most export_max of them, the first in key order.
  std::vector<std::string> export_prefixes;
  int64_t export_max = kDefaultMetricsExportMax;
};

// Reads the metrics flags into `config`. --metrics-export-prefix repeats:
// `prefixes_given` holds each value given on the command line, in order;
// when it is empty, the flag's value (COUNTERSD_METRICS_EXPORT_PREFIX: one
// prefix), if any. INVALID_ARGUMENT naming the flag for a --metrics-listen
// that is not a numeric host:port, an empty or non-key prefix, or a
// --metrics-export-max out of 0..kMaxMetricsExportMax.
absl::Status ReadMetricsFlags(const std::vector<std::string>& prefixes_given,
                              MetricsConfig* config);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_METRICS_CONFIG_H_
