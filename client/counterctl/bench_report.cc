// The shared pieces of `counterctl bench`'s report (bench_report.h).
#include "client/counterctl/bench_report.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace countersd::ctl {

std::string FormatMicros(uint64_t ns) {
  const double us = ns / 1000.0;
  if (us >= 1000.0) return absl::StrFormat("%.2f ms", us / 1000.0);
  return absl::StrFormat("%.0f us", us);
}

std::string LatencyLine(const LatencyHistogram& h) {
  return absl::StrCat("p50 ", FormatMicros(h.Percentile(0.5)), "  p90 ",
                      FormatMicros(h.Percentile(0.9)), "  p99 ", FormatMicros(h.Percentile(0.99)),
                      "  max ", FormatMicros(h.max()));
}

void WriteLatencyJson(const LatencyHistogram& h, JsonWriter& j) {
  j.Key("latency_us").BeginObject();
  j.Field("p50", h.Percentile(0.50) / 1000.0);
  j.Field("p90", h.Percentile(0.90) / 1000.0);
  j.Field("p99", h.Percentile(0.99) / 1000.0);
  j.Field("p999", h.Percentile(0.999) / 1000.0);
  j.Field("max", h.max() / 1000.0).Field("mean", h.mean() / 1000.0);
  j.EndObject();
}

void WriteCodeCountsJson(absl::string_view key, const CodeCounts& by_code, JsonWriter& j) {
  j.Key(key).BeginObject();
  for (size_t c = 0; c < by_code.size(); ++c) {
    if (by_code[c] > 0) {
      j.Field(absl::StatusCodeToString(static_cast<absl::StatusCode>(c)), by_code[c]);
    }
  }
  j.EndObject();
}

void AddCodeRows(absl::string_view label, const CodeCounts& by_code,
                 std::vector<std::vector<std::string>>* rows) {
  for (size_t c = 0; c < by_code.size(); ++c) {
    if (by_code[c] > 0) {
      rows->push_back({std::string(label),
                       absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(c)),
                                    ": ", WithThousands(by_code[c]))});
    }
  }
}

}  // namespace countersd::ctl
