// The daemon's counts of what it did: calls by method and status code, call
// latency histograms, restarts, force-released stripes. They live in one
// anonymous MAP_SHARED mapping that the supervisor makes before it forks,
// so every child sees the same pages, and a respawned child finds the
// counts its predecessor left (no count ever goes backwards while the
// daemon runs). How it works:
//   1. StatsArea::Create (the supervisor, before any fork) maps
//      sizeof(StatsAreaShared) zeroed bytes, MAP_SHARED|MAP_ANONYMOUS, and
//      records the daemon's start (monotonic and wall clock).
//   2. One row per handler INDEX (0..kMaxHandlers-1), not per pid: the
//      handler forked for index i, and every respawn of it, adds to row i.
//      Only that handler writes its row's counts, with relaxed fetch_adds
//      (RecordCall: three adds on lines no other process writes).
//   3. The supervisor writes the restart counts and the force-released
//      stripes (RecordRestart, RecordForceReleased), and each row's pid at every fork.
//   4. Readers (GetStats in a handler, /metrics in the aggregator) load the
//      words relaxed and sum the rows. Each word only grows, so a sum read
//      while others add is a value the total had at some point or between:
//      never lower than an earlier read.
// Nothing here is in the map file: the counts start at zero with the
// daemon, as Prometheus expects of a process's counters.
#ifndef COUNTERSD_SHARED_STATS_AREA_H_
#define COUNTERSD_SHARED_STATS_AREA_H_

#include <sys/types.h>
#include <time.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "shared/limits.h"

namespace countersd {

// The RPC methods counted (server/auth_policy.h RpcMethod, in its order)
// and the gRPC status codes (0 OK .. 16 UNAUTHENTICATED, as absl's).
inline constexpr int kStatsMethods = 11;
inline constexpr int kStatusCodes = 17;

// Upper bounds of the latency buckets, in seconds (Prometheus `le`), from
// 50 us to 10 s; a last bucket (+Inf) takes the rest.
inline constexpr std::array<double, 16> kLatencyBucketBounds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
inline constexpr int kLatencyBuckets = kLatencyBucketBounds.size() + 1;

// Why a child ended, as GetStats' ProcessRestarts.reason and the metrics'
// `reason` label name it.
enum class ExitReason : int { kExited = 0, kSignaled = 1, kStalled = 2 };
inline constexpr int kExitReasons = 3;
std::string_view ExitReasonName(ExitReason reason);  // "exited", "signaled", "stalled"

// The roles the supervisor restarts (handler, aggregator).
enum class RestartRole : int { kHandler = 0, kAggregator = 1 };
inline constexpr int kRestartRoles = 2;
std::string_view RestartRoleName(RestartRole role);  // "handler", "aggregator"

// One method's latency histogram: calls per bucket (not cumulative) and
// the sum of their durations. The count is the sum of the buckets.
struct MethodLatency {
  std::atomic<uint64_t> buckets[kLatencyBuckets];
  std::atomic<uint64_t> sum_ns;
};

// A handler index's row. Invariants:
//  1. pid: written by the supervisor when it forks the row's handler (0
//     before the first); the others read it.
//  2. requests, latency and the log's counts: written only by the row's
//     current handler (its log's by its commit thread), relaxed fetch_add;
//     they only grow.
struct alignas(64) HandlerStatsRow {
  std::atomic<int32_t> pid;
  std::atomic<uint64_t> requests[kStatsMethods][kStatusCodes];
  MethodLatency latency[kStatsMethods];
  // The handler's log of durable writes (server/group_commit.h): each
  // commit turn's write and sync by its duration, the turns that failed,
  // and the records the turns that succeeded made durable.
  MethodLatency log_syncs;
  std::atomic<uint64_t> log_sync_failures;
  std::atomic<uint64_t> log_records_synced;
};

// The whole mapping. Invariants:
//  1. start_monotonic_ns and start_unix_ns: written once by Create, before
//     any fork.
//  2. restarts and stripes_force_released: written only by the supervisor
//     (RecordRestart, RecordForceReleased); they only grow.
//  3. handlers: HandlerStatsRow's invariants.
struct StatsAreaShared {
  int64_t start_monotonic_ns;
  int64_t start_unix_ns;
  alignas(64) std::atomic<uint64_t> restarts[kRestartRoles][kExitReasons];
  std::atomic<uint64_t> stripes_force_released;
  HandlerStatsRow handlers[kMaxHandlers];
};

// A handler's calls and latencies summed over every row (or one row).
struct CallTotals {
  uint64_t requests[kStatsMethods][kStatusCodes] = {};
  uint64_t buckets[kStatsMethods][kLatencyBuckets] = {};
  uint64_t sum_ns[kStatsMethods] = {};
  uint64_t log_sync_buckets[kLatencyBuckets] = {};
  uint64_t log_sync_sum_ns = 0;
  uint64_t log_sync_failures = 0;
  uint64_t log_records_synced = 0;
  // Adds `row`'s counts.
  void Add(const HandlerStatsRow& row);
  uint64_t calls() const;   // every method and code
  uint64_t errors() const;  // every code but OK
};

// The per-process handle of the mapping: every process of the daemon holds
// the same pages through the one the supervisor made.
class StatsArea {
 public:
  // Maps a zeroed area (step 1). INTERNAL naming mmap on failure.
  static absl::StatusOr<StatsArea> Create();
  StatsArea(StatsArea&& other) noexcept;
  StatsArea& operator=(StatsArea&&) = delete;
  ~StatsArea();

  // CLOCK_MONOTONIC in nanoseconds: a call's start and end (RecordCall),
  // the uptime (against start_monotonic_ns).
  static int64_t Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
  // The latency bucket of a call that took `ns` nanoseconds.
  static int LatencyBucket(int64_t ns);

  // The row of handler `index` (0..kMaxHandlers-1).
  HandlerStatsRow& row(int index) const { return area_->handlers[index]; }
  const StatsAreaShared& shared() const { return *area_; }

  // Owner of `row` only: one call of method `method` finished with status
  // code `code` after `ns` nanoseconds. Three relaxed fetch_adds, not a
  // single writer's load and store (2.5 ns against 20 ns in BM_RecordCall):
  // a handler counts from more than one thread (the serving thread, the
  // List thread, gRPC's sync threads for Snapshot, several at once), and a
  // load and store from two of them would lose counts.
  static void RecordCall(HandlerStatsRow& row, int method, int code, int64_t ns) {
    row.requests[method][code].fetch_add(1, std::memory_order_relaxed);
    MethodLatency& l = row.latency[method];
    l.buckets[LatencyBucket(ns)].fetch_add(1, std::memory_order_relaxed);
    l.sum_ns.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }
  // Owner of `row` only (its commit thread): one turn of its log took `ns`
  // nanoseconds and made `records` durable, or failed.
  static void RecordLogSync(HandlerStatsRow& row, int64_t ns, uint64_t records, bool ok) {
    row.log_syncs.buckets[LatencyBucket(ns)].fetch_add(1, std::memory_order_relaxed);
    row.log_syncs.sum_ns.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
    if (ok) {
      row.log_records_synced.fetch_add(records, std::memory_order_relaxed);
    } else {
      row.log_sync_failures.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Supervisor only: a child of `role` ended for `reason` and will be
  // respawned.
  void RecordRestart(RestartRole role, ExitReason reason);
  // Supervisor only: the recovery of a dead child released `n` stripes it
  // held.
  void RecordForceReleased(uint64_t n);
  // Supervisor only: handler `index` was forked as `pid`.
  void SetHandlerPid(int index, pid_t pid) { row(index).pid.store(pid, std::memory_order_relaxed); }

  // Every row summed.
  CallTotals Totals() const;

 private:
  explicit StatsArea(StatsAreaShared* area) : area_(area) {}
  StatsAreaShared* area_;
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_STATS_AREA_H_
