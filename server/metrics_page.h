// What GET /metrics answers: every metric of the daemon, rendered in the
// exposition format (metrics_exposition.h) from the shared state alone, so
// that the aggregator, which serves it, needs nothing from the other
// processes but their mappings and /proc. docs/metrics.md lists each
// metric. gRPC-free.
//
// How it works, at each scrape:
//   1. Calls and latencies: every handler row of the stats area summed
//      (StatsArea::Totals): a respawned handler's row keeps its
//      predecessor's counts, so no total goes backwards.
//   2. The table (size, capacity, layout) and the last snapshot (the
//      mapping's SnapshotControl), the restarts and force-released stripes
//      (the stats area, written by the supervisor).
//   3. The exported counters: the keys under the --metrics-export-prefix
//      prefixes (nested prefixes merged, so each key once), in key order,
//      through List pages; the first export_max are exported, the rest
//      only counted (countersd_counter_values_omitted), which costs a walk
//      of every key under the prefixes.
//   4. process_* of the supervisor, the aggregator and each live handler
//      (the pids of the process slots; a handler's index from its stats
//      row), read from /proc (process_metrics.h); a process that is gone
//      by then is left out.
//   5. Local calls: the attached processes now, and their calls by method
//      summed over the claimed attach slots and the header's retired
//      totals of the freed ones (CounterTable::AttacherStatsSnapshot).
//      That sum never counts a call twice but may miss one for an instant,
//      while a detaching process moves its counts to the retired totals
//      (layout.h, RetiredAttachCalls), so each total served is raised to
//      the highest this aggregator served before (LocalCallsHighWater):
//      a counter never goes backwards. Per claimed slot also its calls and
//      attach time, which start again when a new attacher takes the slot
//      (docs/metrics.md).
#ifndef COUNTERSD_SERVER_METRICS_PAGE_H_
#define COUNTERSD_SERVER_METRICS_PAGE_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/metrics_config.h"
#include "shared/counter_table.h"
#include "shared/stats_area.h"

namespace countersd {

// The local call totals served so far (step 5). Thread-safe.
class LocalCallsHighWater {
 public:
  // Raises each of totals[0..n) to at least what it was at the previous
  // call, and remembers the result.
  void Raise(uint64_t* totals, int n);

 private:
  std::mutex mu_;
  std::vector<uint64_t> highest_;  // guarded by mu_
};

struct MetricsSources {
  CounterTable* table = nullptr;
  const StatsArea* stats = nullptr;
  std::vector<std::string> export_prefixes;
  int64_t export_max = kDefaultMetricsExportMax;
  pid_t supervisor_pid = 0;  // 0: no supervisor's process_* (tests)
  // Shared by the copies of these sources, so by every scrape they serve.
  std::shared_ptr<LocalCallsHighWater> local_high_water = std::make_shared<LocalCallsHighWater>();
};

// The exposition of everything in `sources` (step 1 to 5 above).
// Thread-safe as List is: one call at a time per table handle.
std::string RenderMetrics(const MetricsSources& sources);

// The export prefixes with every one under another removed, sorted (step 3).
std::vector<std::string> MergeExportPrefixes(std::vector<std::string> prefixes);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_METRICS_PAGE_H_
