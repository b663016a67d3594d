// How the counter table works
// ===========================
//
// The file (layout.h) is a header page, one RegionShared per lock stripe,
// per-process stat slots, batch undo journals, and the slot array. The slot
// array is partitioned into `regions` equal ranges; a key's hash (key_hash.h)
// picks its region (high bits) and its first probe position inside it (low
// bits). Collisions probe linearly inside the region only. So:
//
//  1. Every slot is written only by the holder of its region's stripe lock.
//     No cross-stripe claim protocol is needed for inserts.
//  2. Increment of an existing key: lock, probe, checked add, one 8-byte
//     store, unlock. Nothing else is written, so a process killed at any
//     instruction leaves the slot either updated or not.
//  3. Insert (table_insert.cc): an undo record names the slot before the
//     slot is touched; the slot's seq is odd while its key/state change (a
//     seqlock), so lock-free readers never use a half-written key. If the
//     writer dies, crash repair (crash_repair.cc) rolls the insert back (the
//     caller never got an OK) and repairs odd seqs.
//  4. Delete turns the slot into a tombstone. Inserts reuse the first
//     tombstone on their probe path; Open rebuilds regions that have any.
//  5. A batch (table_batch.cc) claims an undo journal, takes its regions in ascending order,
//     plans every new value (checking overflow and capacity before touching
//     anything), then writes each change after appending its undo entry.
//     It commits with a single store (`active = 0`) before unlocking. A batch
//     whose writer dies uncommitted is undone entry by entry.
//  6. Get and List read without locks, using the seqlock of 3. List pages
//     through a per-process sorted index of each region's keys
//     (sorted_key_index.cc), which inserts and deletes invalidate per region
//     through the region's key-set version.
//  7. Snapshots are copy-on-write per region, by epoch (snapshot_staging.cc).
//     SnapshotForEach
//     bumps the table's snapshot epoch; from then on, whoever next holds a
//     region's lock copies the region's live counters into a shared staging
//     area before changing it (unless it was already copied for this epoch):
//     a writer, or the snapshotter itself, which walks the regions one by
//     one. A batch reads the epoch once while it holds all of its regions,
//     so the copy holds the whole batch or none of it. Increments on a
//     region stop only while that one region is copied, and regions that
//     did not change since their last copy are not copied again.
//
// This file holds the single-key operations and the reads; creating,
// opening and validating the file is table_file.cc, and the process stats
// slots are process_slots.cc.
#include "shared/counter_table.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "shared/key.h"
#include "shared/key_hash.h"
#include "shared/sorted_key_index.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {
namespace table_internal {
namespace {

std::atomic<CounterTable::CriticalSectionHook> g_hook{nullptr};
std::atomic<CounterTable::SnapshotCopyHook> g_copy_hook{nullptr};

std::atomic<int32_t> g_pid{0};
void RefreshPid() { g_pid.store(::getpid(), std::memory_order_relaxed); }

}  // namespace

int32_t Pid() {
  int32_t p = g_pid.load(std::memory_order_relaxed);
  if (p != 0) return p;
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, RefreshPid); });
  RefreshPid();
  return g_pid.load(std::memory_order_relaxed);
}

void RunHook(std::string_view key) {
  if (auto hook = g_hook.load(std::memory_order_relaxed)) hook(key);
}

void RunCopyHook(uint32_t r, uint32_t copied) {
  if (auto hook = g_copy_hook.load(std::memory_order_relaxed)) hook(r, copied);
}

absl::Status TableFull(uint64_t capacity) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "counter table is full (capacity ", capacity,
      " counters); delete counters, or restart with a larger --capacity on a new data directory"));
}

absl::Status Overflow(std::string_view key, int64_t value, int64_t delta) {
  return absl::OutOfRangeError(absl::StrCat("adding ", delta, " to counter \"", std::string(key),
                                            "\" (", value,
                                            ") would overflow int64; the value is unchanged"));
}

absl::Status Detached() {
  return absl::UnavailableError(
      "the daemon this process attached to is gone (it restarted, or set its table aside): "
      "detach and attach again");
}

absl::Status NotFound(std::string_view key) {
  return absl::NotFoundError(absl::StrCat("counter \"", std::string(key), "\" does not exist"));
}

}  // namespace table_internal

using layout::RegionShared;
using layout::Slot;
using table_internal::FirstProbe;
using table_internal::MarkDirty;
using table_internal::NextProbe;
using table_internal::NotFound;
using table_internal::Overflow;
using table_internal::ReadSlot;
using table_internal::RewriteSlot;
using table_internal::RunHook;
using table_internal::SlotView;

// RAII holder of one region's lock, for writers: refuses an attached
// writer whose daemon is gone (before it reads or changes anything), then
// copies the region into the snapshot staging area first if a snapshot is
// pending.
class CounterTable::StripeGuard {
 public:
  StripeGuard(const CounterTable* t, uint32_t r) : t_(t), r_(r) {
    t_->LockRegion(r_);
    if (!t_->Admitted()) {
      refused_ = true;
      return;
    }
    t_->CopyRegionIfPending(r_, t_->header_->snapshot_epoch.load(std::memory_order_acquire));
    MarkDirty(t_->region(r_));
  }
  ~StripeGuard() {
    if (refused_) {
      t_->UnlockRefused(r_);
    } else {
      t_->UnlockRegion(r_);
    }
  }
  StripeGuard(const StripeGuard&) = delete;
  StripeGuard& operator=(const StripeGuard&) = delete;
  // The write may not go on: return table_internal::Detached().
  bool refused() const { return refused_; }

 private:
  const CounterTable* t_;
  uint32_t r_;
  bool refused_ = false;
};

void CounterTable::SetCriticalSectionHookForTest(CriticalSectionHook hook) {
  table_internal::g_hook.store(hook);
}

void CounterTable::SetSnapshotCopyHookForTest(SnapshotCopyHook hook) {
  table_internal::g_copy_hook.store(hook);
}

uint32_t CounterTable::StripeOf(std::string_view key) const { return RegionOf(HashKey(key)); }

TableInfo CounterTable::Info() const {
  TableInfo info = opened_info_;
  info.layout_version = header_->layout_version;
  info.capacity = header_->capacity;
  info.live = size();
  info.regions = header_->regions;
  info.region_slots = header_->region_slots;
  info.file_size = header_->file_size;
  info.created_unix_ns = header_->created_unix_ns;
  return info;
}

uint64_t CounterTable::capacity() const { return header_->capacity; }

uint64_t CounterTable::size() const {
  uint64_t n = 0;
  for (uint32_t r = 0; r < header_->regions; ++r) {
    n += region(r)->live.load(std::memory_order_relaxed);
  }
  return n;
}

SnapshotControl& CounterTable::snapshot_control() { return header_->snapshot; }

// ---------------------------------------------------------------------------
// Single-key operations.

absl::StatusOr<int64_t> CounterTable::Increment(std::string_view key, int64_t delta) {
  // Only valid keys are ever stored (Slot invariant 2), so a key that is
  // found needs no validation: the hot path skips it.
  if (key.size() > kMaxKeyBytes) return ValidateKey(key);
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  if (guard.refused()) return table_internal::Detached();
  if (Slot* s = Find(r, key, h)) {
    int64_t v = s->value.load(std::memory_order_relaxed);
    int64_t nv;
    if (__builtin_add_overflow(v, delta, &nv)) return Overflow(key, v, delta);
    RunHook(key);
    s->value.store(nv, std::memory_order_relaxed);
    return nv;
  }
  RETURN_IF_ERROR(ValidateKey(key));
  RETURN_IF_ERROR(Insert(r, key, h, delta));
  return delta;
}

absl::StatusOr<int64_t> CounterTable::Get(std::string_view key) const {
  if (key.size() > kMaxKeyBytes) return ValidateKey(key);
  // An attached reader checks its admission before and after the read:
  // once the daemon is gone, its successor may be repairing the slots
  // (table_attach.cc).
  if (!Admitted()) return table_internal::Detached();
  absl::StatusOr<int64_t> v = GetLockFree(key);
  if (!Admitted()) return table_internal::Detached();
  return v;
}

absl::StatusOr<int64_t> CounterTable::GetLockFree(std::string_view key) const {
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  const uint32_t n = header_->region_slots;
  const Slot* base = slots(r);
  uint32_t i = FirstProbe(h, n);
  SlotView v;
  for (uint32_t probes = 0; probes < n; ++probes, i = (i + 1 == n) ? 0 : i + 1) {
    if (!ReadSlot(&base[i], &v)) continue;
    if (v.state == layout::kEmpty) break;
    if (v.state == layout::kLive && v.hash == h && v.key_view() == key) return v.value;
  }
  RETURN_IF_ERROR(ValidateKey(key));  // found keys are valid; a miss says why
  return NotFound(key);
}

absl::StatusOr<std::optional<int64_t>> CounterTable::Set(std::string_view key, int64_t value) {
  RETURN_IF_ERROR(ValidateKey(key));
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  if (guard.refused()) return table_internal::Detached();
  if (Slot* s = Find(r, key, h)) {
    RunHook(key);
    return s->value.exchange(value, std::memory_order_relaxed);
  }
  RETURN_IF_ERROR(Insert(r, key, h, value));
  return std::nullopt;
}

absl::StatusOr<CounterTable::CasResult> CounterTable::CompareAndSet(std::string_view key,
                                                                    int64_t expected,
                                                                    int64_t value) {
  RETURN_IF_ERROR(ValidateKey(key));
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  if (guard.refused()) return table_internal::Detached();
  Slot* s = Find(r, key, h);
  int64_t current = s ? s->value.load(std::memory_order_relaxed) : 0;
  if (current != expected) return CasResult{false, current};
  if (s) {
    s->value.store(value, std::memory_order_relaxed);
  } else {
    RETURN_IF_ERROR(Insert(r, key, h, value));
  }
  return CasResult{true, value};
}

absl::StatusOr<int64_t> CounterTable::Delete(std::string_view key) {
  RETURN_IF_ERROR(ValidateKey(key));
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  if (guard.refused()) return table_internal::Detached();
  Slot* s = Find(r, key, h);
  if (!s) return NotFound(key);
  int64_t prev = s->value.load(std::memory_order_relaxed);
  RunHook(key);
  RewriteSlot(s, [&] { table_internal::StoreState(s, layout::kTombstone); });
  RegionShared* reg = region(r);
  table_internal::BumpKeySetVersion(reg);
  reg->live.store(reg->live.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  ReleaseCapacity(1);
  return prev;
}

std::vector<Counter> CounterTable::List(std::string_view prefix, std::string_view start_after,
                                        size_t limit) const {
  std::call_once(list_index_once_, [this] {
    list_index_.reset(
        new SortedKeyIndex(regions_base_, slots_base_, header_->regions, region_slots_));
  });
  return list_index_->List(prefix, start_after, limit);
}

void CounterTable::ForEach(
    const std::function<void(std::string_view key, int64_t value)>& fn) const {
  const uint64_t total = uint64_t{header_->regions} * header_->region_slots;
  const Slot* all = slots(0);
  SlotView v;
  for (uint64_t i = 0; i < total; ++i) {
    if (table_internal::LoadState(&all[i]) != layout::kLive) continue;
    if (writable_) {
      if (!ReadSlot(&all[i], &v) || v.state != layout::kLive) continue;
      fn(v.key_view(), v.value);
    } else {
      // Offline file: no writer to wait for; read it as it is.
      const Slot& s = all[i];
      fn(std::string_view(s.key, std::min<uint16_t>(s.key_len, kMaxKeyBytes)),
         s.value.load(std::memory_order_relaxed));
    }
  }
}

absl::Status CounterTable::Sync() { return sys_->Msync(base_, size_, path_); }

absl::Status CounterTable::MarkCleanShutdown() {
  RETURN_IF_ERROR(Sync());
  header_->clean_shutdown.store(1);
  header_->trust_crc = layout::TrustCrc(*header_);  // TableHeader invariant 2
  return sys_->Msync(base_, layout::kPage, path_);
}

}  // namespace countersd
