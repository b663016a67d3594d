// How an atomic batch works
// =========================
//
//  1. Validate every key, hash it, and sort the increments by (region,
//     hash, key, request order): that is the lock order (ascending regions,
//     the one global order, so batches cannot deadlock) and it puts the
//     increments of one key next to each other. A region is its hash's top
//     bits, so that order is the hash's; a big batch is sorted in two
//     steps that give the same order in linear time: a stable counting sort
//     into regions, then a sort of each region's few increments (std::sort
//     of 1,000 increments was 15% of a handler's time under
//     IncrementStream load).
//  2. Claim an undo journal (layout.h, BatchJournal), lock the regions in
//     order, and read the snapshot epoch once with all of them held, so a
//     snapshot holds the whole batch or none of it (snapshot_staging.cc).
//  3. Plan every new value before anything changes: overflow (the first
//     failing increment in request order is reported), room in each region
//     for its creates, and the capacity are checked here, so a refused
//     batch changes nothing. The creates' places are then reserved
//     (table_insert.cc) and their number recorded in the journal before it
//     is marked active, so crash repair gives them back with the undo.
//  4. Apply, journaling each change before making it: an existing counter's
//     old value, or a `created` entry for a new one (table_insert.cc).
//     Nothing can fail any more: every new key has its place and its slot.
//  5. Commit with one store (active = 0) before unlocking. A process that
//     dies before it leaves an active journal; crash repair undoes it entry
//     by entry (crash_repair.cc). A write of a session (session_table.cc)
//     records its response in the session's slot just before that store,
//     under the same journal, so the two commit together.
#include <algorithm>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "shared/batch_refusal.h"
#include "shared/key_hash.h"
#include "shared/table_internal.h"

namespace countersd {
namespace {

// From this many increments on (and at least one per 8 regions), a batch is
// sorted by counting into regions first (step 1).
constexpr size_t kCountingSortFrom = 64;

}  // namespace

using layout::BatchJournal;
using layout::JournalEntry;
using layout::RegionShared;
using layout::Slot;
using table_internal::FirstProbe;
using table_internal::MarkDirty;
using table_internal::Overflow;
using table_internal::RunHook;
using table_internal::TableFull;

BatchJournal* CounterTable::ClaimJournal() {
  const int32_t pid = Holder();
  // Start at a per-thread position so threads rarely collide.
  static thread_local uint32_t start = static_cast<uint32_t>(std::hash<const void*>{}(&start) >> 4);
  for (;;) {
    for (uint32_t k = 0; k < layout::kJournals; ++k) {
      BatchJournal* j = journal((start + k) % layout::kJournals);
      int32_t expected = 0;
      if (j->owner.load(std::memory_order_relaxed) == 0 &&
          j->owner.compare_exchange_strong(expected, pid, std::memory_order_acquire)) {
        return j;
      }
    }
    sched_yield();  // all journals busy: more concurrent batches than journals
  }
}

absl::StatusOr<std::vector<int64_t>> CounterTable::IncrementBatch(absl::Span<const KeyDelta> ops) {
  return ApplyBatch(ops, nullptr);
}

absl::StatusOr<std::vector<int64_t>> CounterTable::ApplyBatch(absl::Span<const KeyDelta> ops,
                                                              SessionHold* session,
                                                              uint64_t* lsn) {
  if (ops.empty()) return absl::InvalidArgumentError("batch is empty");
  if (ops.size() > kMaxBatchOps) {
    return absl::ResourceExhaustedError(
        absl::StrCat("batch has ", ops.size(), " increments; the limit is ", kMaxBatchOps));
  }
  // Per-thread scratch: no allocation per batch beyond the result.
  struct Item {
    uint64_t hash;
    uint32_t region;
    uint32_t index;  // into ops
  };
  struct Target {
    Slot* slot;  // nullptr: to be created
    uint32_t region;
    uint64_t hash;
    std::string_view key;
    int64_t value;
  };
  static thread_local std::vector<Item> items;
  static thread_local std::vector<Item> by_region;  // counting sort's output
  static thread_local std::vector<uint32_t> region_ends;
  static thread_local std::vector<uint32_t> regions;
  static thread_local std::vector<Target> targets;
  items.clear();
  regions.clear();
  targets.clear();
  for (size_t i = 0; i < ops.size(); ++i) {
    absl::Status st = ValidateKey(ops[i].key);
    if (!st.ok()) {
      return absl::InvalidArgumentError(BatchRefusalMessage(i, st.message()));
    }
    const uint64_t h = HashKey(ops[i].key);
    const uint32_t r = RegionOf(h);
    // The first probe is a likely cache miss (another process wrote it):
    // start loading it now, before the locks are taken.
    __builtin_prefetch(&slots(r)[FirstProbe(h, region_slots_)]);
    items.push_back({h, r, static_cast<uint32_t>(i)});
  }
  // Sorting by (region, hash, key, index) gives the lock order and puts the
  // increments of one key next to each other, in request order.
  const auto before = [&](const Item& a, const Item& b) {
    if (a.region != b.region) return a.region < b.region;
    if (a.hash != b.hash) return a.hash < b.hash;
    if (int c = ops[a.index].key.compare(ops[b.index].key)) return c < 0;
    return a.index < b.index;
  };
  const uint32_t region_count = header_->regions;
  if (items.size() < kCountingSortFrom || items.size() < region_count / 8) {
    std::sort(items.begin(), items.end(), before);
  } else {
    region_ends.assign(region_count, 0);
    for (const Item& it : items) ++region_ends[it.region];
    uint32_t end = 0;
    for (uint32_t& e : region_ends) e = end += e;  // each region's end in by_region
    by_region.resize(items.size());
    for (auto it = items.rbegin(); it != items.rend(); ++it)
      by_region[--region_ends[it->region]] = *it;
    // region_ends[r] is now region r's start; sort each region's run.
    for (uint32_t r = 0; r < region_count; ++r) {
      const uint32_t start = region_ends[r];
      const uint32_t stop = r + 1 < region_count ? region_ends[r + 1] : end;
      if (stop - start > 1) std::sort(by_region.begin() + start, by_region.begin() + stop, before);
    }
    items.swap(by_region);
  }
  for (const Item& it : items) {
    if (regions.empty() || regions.back() != it.region) regions.push_back(it.region);
  }

  BatchJournal* j = ClaimJournal();
  for (uint32_t r : regions) LockRegion(r);  // ascending: the one global lock order
  auto release_journal = [&] {
    // A CAS: an attacher refused below may find that a new owner's Open
    // freed the journal meanwhile, and someone else claimed it.
    int32_t mine = Holder();
    j->owner.compare_exchange_strong(mine, 0, std::memory_order_release);
  };
  if (!Admitted()) {  // with every region held, before anything is read
    for (auto it = regions.rbegin(); it != regions.rend(); ++it) UnlockRefused(*it);
    release_journal();
    return table_internal::Detached();
  }
  // One epoch for every region of the batch: a snapshot holds all of it or
  // none of it (see CopyRegionIfPending).
  const uint32_t epoch = header_->snapshot_epoch.load(std::memory_order_acquire);
  for (uint32_t r : regions) {
    CopyRegionIfPending(r, epoch);
    MarkDirty(region(r));
  }
  // The session's entry is part of the write: copied with the same epoch.
  if (session != nullptr) PrepareSessionChange(session->slot, epoch);
  auto release = [&] {
    for (auto it = regions.rbegin(); it != regions.rend(); ++it) UnlockRegion(*it);
    release_journal();
  };

  // Plan: every new value, before anything changes.
  std::vector<int64_t> values(ops.size());
  uint64_t creates = 0;
  bool region_full = false;
  uint32_t region_creates = 0;      // of targets.back()'s region, so far
  size_t overflow_at = ops.size();  // the first overflowing increment, in request order
  std::string overflow_message;
  for (size_t k = 0; k < items.size(); ++k) {
    const Item& it = items[k];
    const std::string_view key = ops[it.index].key;
    if (k == 0 || it.hash != items[k - 1].hash || key != ops[items[k - 1].index].key) {
      Slot* s = Find(it.region, key, it.hash);
      if (targets.empty() || targets.back().region != it.region) region_creates = 0;
      targets.push_back(
          {s, it.region, it.hash, key, s ? s->value.load(std::memory_order_relaxed) : 0});
      if (!s) {
        ++creates;
        // Linear probing finds a free slot while one is not live.
        if (region(it.region)->live.load(std::memory_order_relaxed) + ++region_creates >
            region_slots_) {
          region_full = true;
        }
      }
    }
    Target& t = targets.back();
    const int64_t delta = ops[it.index].delta;
    int64_t nv;
    if (__builtin_add_overflow(t.value, delta, &nv)) {
      if (it.index < overflow_at) {
        overflow_at = it.index;
        overflow_message = std::string(Overflow(key, t.value, delta).message());
      }
      nv = t.value;  // keep planning to find the first failure in request order
    }
    t.value = nv;
    values[it.index] = nv;
  }
  if (overflow_at < ops.size()) {
    release();
    return absl::OutOfRangeError(
        absl::StrCat(BatchRefusalMessage(overflow_at, overflow_message), kNoIncrementApplied));
  }
  if (region_full || (creates > 0 && !ReserveCapacity(creates))) {
    release();
    return TableFull(header_->capacity);
  }

  // Apply, journaling each change before making it.
  j->count = 0;
  j->reserved = static_cast<uint32_t>(creates);
  j->session = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  j->active.store(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // A durable write's LSN, after the epoch was read (write_ahead_log.h).
  if (lsn != nullptr) *lsn = TakeWalLsn(regions);
  for (Target& t : targets) {
    if (t.slot == nullptr) {
      InsertSlot(t.region, t.key, t.hash, t.value, j);
      continue;
    }
    JournalEntry& e = j->entries[j->count];
    e.region = t.region;
    e.slot = static_cast<uint32_t>(t.slot - slots(t.region));
    e.old_value = t.slot->value.load(std::memory_order_relaxed);
    e.created = 0;
    ++j->count;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    RunHook(t.key);
    t.slot->value.store(t.value, std::memory_order_relaxed);
  }
  // A session's entry is recorded under the same journal: one commit.
  if (session != nullptr) RecordSessionEntry(j, *session, values, false);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  j->active.store(0, std::memory_order_release);  // commit point
  release();
  return values;
}

}  // namespace countersd
