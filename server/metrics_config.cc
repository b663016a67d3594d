// The metrics flags (metrics_config.h): their definitions and checks.
#include "server/metrics_config.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "server/socket_address.h"
#include "shared/abseil_string_view.h"
#include "shared/key.h"

ABSL_FLAG(std::string, metrics_listen, countersd::kDefaultMetricsListen,
          "Where the aggregator serves GET /metrics (Prometheus text format): a numeric "
          "host:port or [v6]:port (port 0: any free port, logged as \"metrics listening on\"); "
          "empty turns it off. Loopback by default: the metrics name keys and show the load, "
          "so exposing them beyond the host is the operator's choice.");
ABSL_FLAG(std::string, metrics_export_prefix, "",
          "Export the counters whose keys start with this as gauge countersd_counter_value{key}. "
          "Repeat the flag for several prefixes (COUNTERSD_METRICS_EXPORT_PREFIX holds one).");
ABSL_FLAG(int64_t, metrics_export_max, countersd::kDefaultMetricsExportMax,
          "At most this many counters exported per scrape (the first in key order); "
          "countersd_counter_values_omitted counts the rest.");

namespace countersd {

absl::Status ReadMetricsFlags(const std::vector<std::string>& prefixes_given,
                              MetricsConfig* config) {
  config->listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!config->listen.empty()) {
    if (absl::StatusOr<SocketAddress> a = ParseSocketAddress(config->listen); !a.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", config->listen,
                       "' for --metrics-listen: must be a numeric host:port or [v6]:port "
                       "(e.g. 127.0.0.1:50052), or empty for no /metrics endpoint"));
    }
  }
  config->export_prefixes = prefixes_given;
  if (prefixes_given.empty() && !absl::GetFlag(FLAGS_metrics_export_prefix).empty()) {
    config->export_prefixes.push_back(absl::GetFlag(FLAGS_metrics_export_prefix));
  }
  for (const std::string& p : config->export_prefixes) {
    if (absl::Status s = ValidateKey(p); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad value '", p, "' for --metrics-export-prefix: must be a key prefix: ", s.message()));
    }
  }
  config->export_max = absl::GetFlag(FLAGS_metrics_export_max);
  if (config->export_max < 0 || config->export_max > kMaxMetricsExportMax) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-export-max=", config->export_max,
                                                   " is out of range: must be 0 to ",
                                                   kMaxMetricsExportMax));
  }
  return absl::OkStatus();
}

}  // namespace countersd
