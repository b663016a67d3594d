// The pieces of `counterctl bench`'s report that every load prints alike
// (bench.cc for the unary loads, bench_stream.cc for streams): latencies as
// text and as JSON, and the count of each failing status code.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_BENCH_REPORT_H_
#define COUNTERSD_CLIENT_COUNTERCTL_BENCH_REPORT_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "client/counterctl/latency_histogram.h"
#include "client/counterctl/output.h"

namespace countersd::ctl {

// Calls (or messages) by gRPC status code, 0 OK .. 16 UNAUTHENTICATED.
using CodeCounts = std::array<uint64_t, 17>;

// "1.23 ms" or "456 us".
std::string FormatMicros(uint64_t ns);
// "p50 .. p90 .. p99 .. max ..", each FormatMicros.
std::string LatencyLine(const LatencyHistogram& h);
// "latency_us": {"p50", "p90", "p99", "p999", "max", "mean"}, in µs.
void WriteLatencyJson(const LatencyHistogram& h, JsonWriter& j);
// `key`: {"<CODE NAME>": count, ...}, the codes that occurred.
void WriteCodeCountsJson(absl::string_view key, const CodeCounts& by_code, JsonWriter& j);
// A row {label, "<CODE NAME>: count"} for each code that occurred.
void AddCodeRows(absl::string_view label, const CodeCounts& by_code,
                 std::vector<std::vector<std::string>>* rows);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_BENCH_REPORT_H_
