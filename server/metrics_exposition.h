// The Prometheus text exposition format (version 0.0.4), written: metric
// families with their # HELP and # TYPE lines, samples with escaped label
// values, and histograms from per-bucket counts. Only what /metrics needs;
// no parser. gRPC-free.
//
// The format's rules kept here: a label value escapes backslash (\\),
// double quote (\") and newline (\n); a HELP text escapes backslash and
// newline; sample values are Go-style floats ("+Inf", shortest round-trip
// decimal); a histogram's buckets are cumulative, end with le="+Inf" (equal
// to _count), and come with _sum and _count.
#ifndef COUNTERSD_SERVER_METRICS_EXPOSITION_H_
#define COUNTERSD_SERVER_METRICS_EXPOSITION_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace countersd {

// `value` escaped for use between a label's double quotes.
std::string EscapeLabelValue(std::string_view value);

// `value` as the format writes a sample value: integers exactly (up to
// 2^53), others as the shortest decimal that reads back the same.
std::string FormatSampleValue(double value);

struct MetricLabel {
  std::string_view name;
  std::string_view value;  // unescaped
};

// Builds one exposition. Families must be begun once each, their samples
// written right after (the format wants a family's lines together).
class ExpositionWriter {
 public:
  // "# HELP <name> <help>" and "# TYPE <name> <type>" (counter, gauge,
  // histogram).
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // "<name>{<labels>} <value>".
  void Sample(std::string_view name, const std::vector<MetricLabel>& labels, double value);
  // A histogram's samples: <name>_bucket{labels,le} cumulative over
  // `counts` (one per bound, then the +Inf bucket: counts.size() ==
  // bounds.size() + 1), <name>_sum `sum` and <name>_count.
  void Histogram(std::string_view name, const std::vector<MetricLabel>& labels,
                 std::span<const double> bounds, std::span<const uint64_t> counts, double sum);
  // The text so far.
  const std::string& text() const { return out_; }

 private:
  void Labels(const std::vector<MetricLabel>& labels, std::string_view le = {});
  std::string out_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_METRICS_EXPOSITION_H_
