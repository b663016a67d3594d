// How a new key is placed (the one insert routine, for single-key writes
// and for batches alike)
// =======================================================================
//
// REQUIRES: the region's stripe held by this process, the key valid and
// absent from the region, and the capacity already checked.
//  1. Probe from the key's first position to the first slot that is not
//     live: an empty slot ends every probe chain, and a tombstone on the
//     way is reused. No such slot: the region is full (nullptr).
//  2. Record how to undo the insert before touching the slot: a single-key
//     write sets the region's `inserting` word; a batch appends a `created`
//     entry to its journal. If this process dies from here on, crash repair
//     turns the slot back into a tombstone (crash_repair.cc).
//  3. Rewrite the slot under its seqlock (hash, key, value, then state), so
//     lock-free readers never see a half-written key.
//  4. Change the region's key-set version (layout.h, RegionShared
//     invariant 5), so that List's per-process sorted key indexes rescan it.
//  5. Count it (region live/used, the table's live_total hint), then clear
//     the single-key undo record; a batch's record stays until it commits.
#include "shared/table_internal.h"

namespace countersd {

using layout::JournalEntry;
using layout::RegionShared;
using layout::Slot;
using table_internal::FirstProbe;
using table_internal::NextProbe;
using table_internal::RewriteSlot;
using table_internal::RunHook;

Slot* CounterTable::InsertSlot(uint32_t r, std::string_view key, uint64_t hash, int64_t value,
                               layout::BatchJournal* batch) {
  const uint32_t n = region_slots_;
  Slot* base = slots(r);
  uint32_t i = FirstProbe(hash, n);
  for (uint32_t probes = 0; base[i].state == layout::kLive; i = NextProbe(i, n)) {  // 1.
    if (++probes == n) return nullptr;
  }
  Slot* s = &base[i];
  RegionShared* reg = region(r);
  const bool was_empty = s->state == layout::kEmpty;
  if (batch != nullptr) {  // 2.
    JournalEntry& e = batch->entries[batch->count];
    e.region = r;
    e.slot = i;
    e.old_value = 0;
    e.created = 1;
    ++batch->count;
  } else {
    reg->inserting = i + 1;
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  RunHook(key);
  RewriteSlot(s, [&] {  // 3.
    table_internal::StoreHash(s, hash);
    table_internal::StoreKey(s, key);
    s->value.store(value, std::memory_order_relaxed);
    table_internal::StoreState(s, layout::kLive);
  });
  table_internal::BumpKeySetVersion(reg);  // 4.
  reg->live.store(reg->live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);  // 5.
  if (was_empty) ++reg->used;
  header_->live_total.fetch_add(1, std::memory_order_relaxed);
  if (batch == nullptr) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    reg->inserting = 0;
  }
  return s;
}

absl::Status CounterTable::Insert(uint32_t r, std::string_view key, uint64_t hash,
                                  int64_t value) {
  if (WouldExceedCapacity(1) || InsertSlot(r, key, hash, value, nullptr) == nullptr) {
    return table_internal::TableFull(header_->capacity);
  }
  return absl::OkStatus();
}

}  // namespace countersd
