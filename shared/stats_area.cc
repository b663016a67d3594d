// The stats area's mapping and its sums; how it works is in stats_area.h.
#include "shared/stats_area.h"

#include <sys/mman.h>

#include <cerrno>

#include "absl/time/clock.h"
#include "shared/sys.h"

namespace countersd {

std::string_view ExitReasonName(ExitReason reason) {
  switch (reason) {
    case ExitReason::kExited:
      return "exited";
    case ExitReason::kSignaled:
      return "signaled";
    case ExitReason::kStalled:
      return "stalled";
  }
  return "exited";
}

std::string_view RestartRoleName(RestartRole role) {
  return role == RestartRole::kHandler ? "handler" : "aggregator";
}

absl::StatusOr<StatsArea> StatsArea::Create() {
  void* p = mmap(nullptr, sizeof(StatsAreaShared), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return ErrnoToStatus(errno, "mmap(stats area)");
  auto* area = static_cast<StatsAreaShared*>(p);  // zero-filled by the kernel
  area->start_monotonic_ns = Now();
  area->start_unix_ns = absl::GetCurrentTimeNanos();
  return StatsArea(area);
}

StatsArea::StatsArea(StatsArea&& other) noexcept : area_(other.area_) { other.area_ = nullptr; }

StatsArea::~StatsArea() {
  if (area_ != nullptr) munmap(area_, sizeof(StatsAreaShared));
}

namespace {

// The bounds in nanoseconds, so that a call's bucket is integer compares.
constexpr std::array<int64_t, kLatencyBucketBounds.size()> kBoundsNs = [] {
  std::array<int64_t, kLatencyBucketBounds.size()> ns{};
  for (size_t b = 0; b < ns.size(); ++b) {
    ns[b] = static_cast<int64_t>(kLatencyBucketBounds[b] * 1e9 + 0.5);
  }
  return ns;
}();

}  // namespace

int StatsArea::LatencyBucket(int64_t ns) {
  int b = 0;
  while (b < static_cast<int>(kBoundsNs.size()) && ns > kBoundsNs[b]) ++b;
  return b;
}

void StatsArea::RecordRestart(RestartRole role, ExitReason reason) {
  area_->restarts[static_cast<int>(role)][static_cast<int>(reason)].fetch_add(
      1, std::memory_order_relaxed);
}

void StatsArea::RecordForceReleased(uint64_t n) {
  area_->stripes_force_released.fetch_add(n, std::memory_order_relaxed);
}

void CallTotals::Add(const HandlerStatsRow& row) {
  for (int m = 0; m < kStatsMethods; ++m) {
    for (int c = 0; c < kStatusCodes; ++c) {
      requests[m][c] += row.requests[m][c].load(std::memory_order_relaxed);
    }
    for (int b = 0; b < kLatencyBuckets; ++b) {
      buckets[m][b] += row.latency[m].buckets[b].load(std::memory_order_relaxed);
    }
    sum_ns[m] += row.latency[m].sum_ns.load(std::memory_order_relaxed);
  }
  for (int b = 0; b < kLatencyBuckets; ++b) {
    log_sync_buckets[b] += row.log_syncs.buckets[b].load(std::memory_order_relaxed);
  }
  log_sync_sum_ns += row.log_syncs.sum_ns.load(std::memory_order_relaxed);
  log_sync_failures += row.log_sync_failures.load(std::memory_order_relaxed);
  log_records_synced += row.log_records_synced.load(std::memory_order_relaxed);
}

uint64_t CallTotals::calls() const {
  uint64_t n = 0;
  for (const auto& method : requests) {
    for (uint64_t v : method) n += v;
  }
  return n;
}

uint64_t CallTotals::errors() const {
  uint64_t n = calls();
  for (const auto& method : requests) n -= method[0];
  return n;
}

CallTotals StatsArea::Totals() const {
  CallTotals t;
  for (const HandlerStatsRow& row : area_->handlers) t.Add(row);
  return t;
}

}  // namespace countersd
