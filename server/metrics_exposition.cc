// The exposition format's writer (metrics_exposition.h).
#include "server/metrics_exposition.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"

namespace countersd {

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[32];
  std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

void ExpositionWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  std::string escaped;
  for (char c : help) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  absl::StrAppend(&out_, "# HELP ", Sv(name), " ", escaped, "\n# TYPE ", Sv(name), " ", Sv(type),
                  "\n");
}

void ExpositionWriter::Labels(const std::vector<MetricLabel>& labels, std::string_view le) {
  if (labels.empty() && le.empty()) return;
  out_ += '{';
  bool first = true;
  for (const MetricLabel& l : labels) {
    absl::StrAppend(&out_, first ? "" : ",", Sv(l.name), "=\"", EscapeLabelValue(l.value), "\"");
    first = false;
  }
  if (!le.empty()) absl::StrAppend(&out_, first ? "" : ",", "le=\"", Sv(le), "\"");
  out_ += '}';
}

void ExpositionWriter::Sample(std::string_view name, const std::vector<MetricLabel>& labels,
                              double value) {
  out_ += name;
  Labels(labels);
  absl::StrAppend(&out_, " ", FormatSampleValue(value), "\n");
}

void ExpositionWriter::Histogram(std::string_view name, const std::vector<MetricLabel>& labels,
                                 std::span<const double> bounds, std::span<const uint64_t> counts,
                                 double sum) {
  uint64_t cumulative = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    cumulative += counts[b];
    const std::string le = b < bounds.size() ? FormatSampleValue(bounds[b]) : "+Inf";
    absl::StrAppend(&out_, Sv(name), "_bucket");
    Labels(labels, le);
    absl::StrAppend(&out_, " ", cumulative, "\n");
  }
  Sample(absl::StrCat(Sv(name), "_sum"), labels, sum);
  Sample(absl::StrCat(Sv(name), "_count"), labels, static_cast<double>(cumulative));
}

}  // namespace countersd
