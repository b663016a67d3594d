// The /metrics page (metrics_page.h has how it works).
#include "server/metrics_page.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "countersd_version.h"
#include "server/auth_policy.h"
#include "server/local_calls.h"
#include "server/metrics_exposition.h"
#include "server/process_metrics.h"
#include "shared/abseil_string_view.h"
#include "shared/control.h"

namespace countersd {
namespace {

// Stats rows count the methods in RpcMethod's order (kAllRpcMethods).
static_assert(std::size(kAllRpcMethods) == kStatsMethods, "a stats row counts every method");
const char* MethodName(int m) { return RpcMethodName(kAllRpcMethods[m]); }

void CallMetrics(const CallTotals& t, ExpositionWriter& w) {
  w.Family("countersd_requests_total", "counter",
           "CounterService calls finished, by method and gRPC status code.");
  for (int m = 0; m < kStatsMethods; ++m) {
    for (int c = 0; c < kStatusCodes; ++c) {
      if (c != 0 && t.requests[m][c] == 0) continue;  // OK always, so every method shows
      const std::string code = absl::StatusCodeToString(static_cast<absl::StatusCode>(c));
      w.Sample("countersd_requests_total", {{"method", MethodName(m)}, {"code", code}},
               static_cast<double>(t.requests[m][c]));
    }
  }
  w.Family("countersd_request_duration_seconds", "histogram",
           "Time a handler spent on a CounterService call, from its start to its reply's status.");
  for (int m = 0; m < kStatsMethods; ++m) {
    w.Histogram("countersd_request_duration_seconds", {{"method", MethodName(m)}},
                kLatencyBucketBounds, t.buckets[m], static_cast<double>(t.sum_ns[m]) * 1e-9);
  }
  w.Family("countersd_durable_log_sync_duration_seconds", "histogram",
           "Commit turns of the handlers' logs of durable writes: each writes every record "
           "appended since the last and fsyncs once, failed turns included.");
  w.Histogram("countersd_durable_log_sync_duration_seconds", {}, kLatencyBucketBounds,
              t.log_sync_buckets, static_cast<double>(t.log_sync_sum_ns) * 1e-9);
  w.Family("countersd_durable_log_sync_failures_total", "counter",
           "Commit turns whose write or fsync failed: their writes answered INTERNAL (applied, "
           "not known durable), the segment abandoned, a snapshot asked for.");
  w.Sample("countersd_durable_log_sync_failures_total", {},
           static_cast<double>(t.log_sync_failures));
  w.Family("countersd_durable_log_records_synced_total", "counter",
           "Records the handlers' logs made durable (one per durable write answered OK): over "
           "the sync count, the writes that shared a sync.");
  w.Sample("countersd_durable_log_records_synced_total", {},
           static_cast<double>(t.log_records_synced));
}

void TableMetrics(CounterTable& table, ExpositionWriter& w) {
  w.Family("countersd_build_info", "gauge",
           "Always 1: the server's version and the layout version of its map file.");
  w.Sample("countersd_build_info",
           {{"version", kVersion}, {"layout_version", absl::StrCat(table.Info().layout_version)}},
           1);
  w.Family("countersd_counters", "gauge", "Counters in the table.");
  w.Sample("countersd_counters", {}, static_cast<double>(table.size()));
  w.Family("countersd_capacity", "gauge", "Most counters the table holds.");
  w.Sample("countersd_capacity", {}, static_cast<double>(table.capacity()));
  w.Family("countersd_sessions", "gauge",
           "Exactly-once sessions the daemon remembers (at most --sessions-max).");
  w.Sample("countersd_sessions", {}, static_cast<double>(table.SessionsLive()));
  w.Family("countersd_durable_log_records_total", "counter",
           "Records given to the log of durable writes (one per durable write or durable "
           "retry) since the table was made.");
  w.Sample("countersd_durable_log_records_total", {}, static_cast<double>(table.LastWalLsn()));
  const SnapshotControl& control = table.snapshot_control();
  w.Family("countersd_snapshot_duration_seconds", "gauge",
           "Time the last durable snapshot took to copy and sync (0: none yet).");
  w.Sample("countersd_snapshot_duration_seconds", {},
           static_cast<double>(control.micros.load(std::memory_order_relaxed)) * 1e-6);
  w.Family("countersd_last_snapshot_timestamp_seconds", "gauge",
           "Unix time at which the last snapshot became durable (0: none yet).");
  w.Sample("countersd_last_snapshot_timestamp_seconds", {},
           static_cast<double>(control.unix_ns.load(std::memory_order_relaxed)) * 1e-9);
  w.Family("countersd_snapshot_failures_total", "counter",
           "Snapshot attempts that failed (an msync or fsync error, no writable snapshot file).");
  w.Sample("countersd_snapshot_failures_total", {},
           static_cast<double>(control.failures.load(std::memory_order_relaxed)));
}

void SupervisorMetrics(const StatsAreaShared& area, ExpositionWriter& w) {
  w.Family("countersd_process_restarts_total", "counter",
           "Children the supervisor respawned, by role and why the previous one ended "
           "(exited, signaled, stalled: killed by the liveness checks).");
  for (int role = 0; role < kRestartRoles; ++role) {
    for (int reason = 0; reason < kExitReasons; ++reason) {
      w.Sample("countersd_process_restarts_total",
               {{"role", RestartRoleName(static_cast<RestartRole>(role))},
                {"reason", ExitReasonName(static_cast<ExitReason>(reason))}},
               static_cast<double>(area.restarts[role][reason].load(std::memory_order_relaxed)));
    }
  }
  w.Family("countersd_stripes_force_released_total", "counter",
           "Lock stripes the supervisor released for a child that died holding them.");
  w.Sample("countersd_stripes_force_released_total", {},
           static_cast<double>(area.stripes_force_released.load(std::memory_order_relaxed)));
}

void ExportedCounters(const MetricsSources& s, ExpositionWriter& w) {
  if (s.export_prefixes.empty()) return;
  constexpr size_t kPage = 1000;
  uint64_t omitted = 0;
  w.Family("countersd_counter_value", "gauge",
           "The value of each counter under a --metrics-export-prefix (at most "
           "--metrics-export-max of them, the first in key order).");
  int64_t exported = 0;
  for (const std::string& prefix : MergeExportPrefixes(s.export_prefixes)) {
    std::string after;
    while (true) {
      std::vector<Counter> page = s.table->List(prefix, after, kPage);
      for (const Counter& c : page) {
        if (exported < s.export_max) {
          w.Sample("countersd_counter_value", {{"key", c.key}}, static_cast<double>(c.value));
          ++exported;
        } else {
          ++omitted;
        }
      }
      if (page.size() < kPage) break;
      after = page.back().key;
    }
  }
  w.Family("countersd_counter_values_omitted", "gauge",
           "Counters under the export prefixes left out because --metrics-export-max were "
           "exported already.");
  w.Sample("countersd_counter_values_omitted", {}, static_cast<double>(omitted));
}

void LocalMetrics(const MetricsSources& s, ExpositionWriter& w) {
  AttachCallTotals retired;
  const std::vector<AttacherStats> attachers = s.table->AttacherStatsSnapshot(&retired);
  w.Family("countersd_local_attachers", "gauge",
           "Processes attached to the table now (local attach), those of an earlier daemon "
           "that are still alive included.");
  w.Sample("countersd_local_attachers", {}, static_cast<double>(attachers.size()));
  // Totals, then the failures, raised together.
  uint64_t totals[kLocalCallKinds + 1];
  for (int m = 0; m < kLocalCallKinds; ++m) totals[m] = retired.calls[m];
  totals[kLocalCallKinds] = retired.failures;
  for (const AttacherStats& a : attachers) {
    for (int m = 0; m < kLocalCallKinds; ++m) totals[m] += a.calls[m];
    totals[kLocalCallKinds] += a.failures;
  }
  if (s.local_high_water) s.local_high_water->Raise(totals, kLocalCallKinds + 1);
  w.Family("countersd_local_calls_total", "counter",
           "Calls of attached processes by method, whatever their outcome, since the daemon "
           "started (those of processes that detached or died included).");
  for (int m = 0; m < kLocalCallKinds; ++m) {
    w.Sample("countersd_local_calls_total", {{"method", RpcMethodName(kLocalCallMethods[m])}},
             static_cast<double>(totals[m]));
  }
  w.Family("countersd_local_call_failures_total", "counter",
           "Calls of attached processes that returned a status other than OK.");
  w.Sample("countersd_local_call_failures_total", {}, static_cast<double>(totals[kLocalCallKinds]));
  w.Family("countersd_local_attacher_calls_total", "counter",
           "Calls of the process attached in each slot, by method, since it attached; they "
           "start again when another process takes the slot.");
  for (const AttacherStats& a : attachers) {
    const std::string slot = absl::StrCat(a.slot);
    for (int m = 0; m < kLocalCallKinds; ++m) {
      if (a.calls[m] == 0) continue;
      w.Sample("countersd_local_attacher_calls_total",
               {{"slot", slot}, {"method", RpcMethodName(kLocalCallMethods[m])}},
               static_cast<double>(a.calls[m]));
    }
  }
  w.Family("countersd_local_attacher_start_time_seconds", "gauge",
           "Unix time at which the process attached in each slot attached.");
  for (const AttacherStats& a : attachers) {
    w.Sample("countersd_local_attacher_start_time_seconds", {{"slot", absl::StrCat(a.slot)}},
             static_cast<double>(a.attached_unix_ns) * 1e-9);
  }
}

struct LabelledProcess {
  std::string role;
  std::string index;  // empty but for handlers
  ProcessSample sample;
};

void ProcessMetrics(const MetricsSources& s, ExpositionWriter& w) {
  std::vector<LabelledProcess> procs;
  auto add = [&](pid_t pid, std::string role, std::string index) {
    absl::StatusOr<ProcessSample> sample = ReadProcessSample(pid);
    if (sample.ok()) procs.push_back({std::move(role), std::move(index), *sample});
  };
  if (s.supervisor_pid != 0) add(s.supervisor_pid, "supervisor", "");
  for (const ProcessStats& p : s.table->ProcessStatsSnapshot()) {
    if (p.role == ProcessRole::kAggregator) {
      add(p.pid, "aggregator", "");
      continue;
    }
    for (int i = 0; i < kMaxHandlers; ++i) {
      if (s.stats->row(i).pid.load(std::memory_order_relaxed) == p.pid) {
        add(p.pid, "handler", absl::StrCat(i));
      }
    }
  }
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    w.Family(name, type, help);
    for (const LabelledProcess& p : procs) {
      std::vector<MetricLabel> labels = {{"role", p.role}};
      if (!p.index.empty()) labels.push_back({"index", p.index});
      if (std::optional<double> v = value(p.sample)) w.Sample(name, labels, *v);
    }
  };
  using S = const ProcessSample&;
  family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.",
         [](S p) { return std::optional<double>(p.cpu_seconds); });
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         [](S p) { return std::optional<double>(static_cast<double>(p.resident_bytes)); });
  family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
         [](S p) { return std::optional<double>(static_cast<double>(p.virtual_bytes)); });
  family("process_start_time_seconds", "gauge", "Start time of the process, in unix seconds.",
         [](S p) { return std::optional<double>(p.start_time_seconds); });
  family("process_open_fds", "gauge", "Open file descriptors.",
         [](S p) { return std::optional<double>(static_cast<double>(p.open_fds)); });
  family("process_max_fds", "gauge", "Most open file descriptors (the soft RLIMIT_NOFILE).",
         [](S p) {
           return p.max_fds ? std::optional<double>(static_cast<double>(*p.max_fds)) : std::nullopt;
         });
}

}  // namespace

void LocalCallsHighWater::Raise(uint64_t* totals, int n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (highest_.size() < static_cast<size_t>(n)) highest_.resize(n, 0);
  for (int i = 0; i < n; ++i) {
    totals[i] = std::max(totals[i], highest_[i]);
    highest_[i] = totals[i];
  }
}

std::vector<std::string> MergeExportPrefixes(std::vector<std::string> prefixes) {
  std::sort(prefixes.begin(), prefixes.end());
  std::vector<std::string> out;
  for (std::string& p : prefixes) {
    // Sorted: a prefix of p, if any is kept, is the last kept.
    if (!out.empty() && absl::StartsWith(p, out.back())) continue;
    out.push_back(std::move(p));
  }
  return out;
}

std::string RenderMetrics(const MetricsSources& s) {
  ExpositionWriter w;
  TableMetrics(*s.table, w);
  CallMetrics(s.stats->Totals(), w);
  SupervisorMetrics(s.stats->shared(), w);
  LocalMetrics(s, w);
  ExportedCounters(s, w);
  ProcessMetrics(s, w);
  return w.text();
}

}  // namespace countersd
