// How a new key is placed (the one insert routine, for single-key writes
// and for batches alike)
// =======================================================================
//
// REQUIRES: the region's stripe held by this process, the key valid and
// absent from the region, a place of the capacity reserved, and a slot of
// the region not live (its `live` < region_slots).
//  1. Probe from the key's first position to the first slot that is not
//     live: an empty slot ends every probe chain, and a tombstone on the
//     way is reused. Linear probing wraps, so it finds one whenever the
//     region's `live` count says there is one.
//  2. Record how to undo the insert before touching the slot: a single-key
//     write sets the region's `inserting` word; a batch appends a `created`
//     entry to its journal. If this process dies from here on, crash repair
//     turns the slot back into a tombstone (crash_repair.cc).
//  3. Rewrite the slot under its seqlock (hash, key, value, then state), so
//     lock-free readers never see a half-written key.
//  4. Change the region's key-set version (layout.h, RegionShared
//     invariant 5), so that List's per-process sorted key indexes rescan it.
//  5. Count it in the region (live, used; its place in the table's
//     reserved_total was taken before), then clear the single-key undo
//     record; a batch's record stays until it commits.
//
// How the capacity is kept (TableHeader::reserved_total, layout.h)
// ================================================================
//
// The capacity is a table-wide bound, but inserts into different regions
// hold different locks. So a place is reserved before the insert, with a
// compare-and-swap on the table's reserved_total that never takes it past
// the capacity: of two inserts racing for the last place one gets it, the
// other gets RESOURCE_EXHAUSTED. (Summing the regions' counts and then
// inserting let both through: 101 counters in a table of 100.)
//  - A single-key insert reserves one place before it records its undo;
//    a batch reserves all its creates while it holds its regions, records
//    the number in its journal, and only then marks the journal active.
//    Each refuses a full region before reserving, so an insert that holds
//    a reservation always finds a slot: nothing is reserved and abandoned.
//  - A delete gives its place back after the region's count.
//  - RecoverDeadProcess gives back what the dead process held: one place
//    per rolled-back insert, its journal's count per undone batch.
//  - Open recounts reserved_total as the sum of the regions' counts.
// So reserved_total == live counters + places reserved by inserts in
// flight. A process killed between reserving and recording it (a single
// insert's probe for its slot, a batch's one store to its journal), or in a
// delete between the region's count and the release, leaves reserved_total
// too high, never too low: the table is full early until the next Open,
// never over its capacity.
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
  for (uint32_t probes = 0; base[i].state == layout::kLive && ++probes < n;) {  // 1.
    i = NextProbe(i, n);
  }
  Slot* s = &base[i];
  RegionShared* reg = region(r);
  if (s->state == layout::kLive) __builtin_trap();  // no free slot: REQUIRES broken
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
  if (batch == nullptr) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    reg->inserting = 0;
  }
  return s;
}

absl::Status CounterTable::Insert(uint32_t r, std::string_view key, uint64_t hash,
                                  int64_t value) {
  if (region(r)->live.load(std::memory_order_relaxed) >= region_slots_ || !ReserveCapacity(1)) {
    return table_internal::TableFull(header_->capacity);
  }
  InsertSlot(r, key, hash, value, nullptr);
  return absl::OkStatus();
}

bool CounterTable::ReserveCapacity(uint64_t creates) const {
  const uint64_t capacity = header_->capacity;
  uint64_t reserved = header_->reserved_total.load(std::memory_order_relaxed);
  do {
    if (reserved + creates > capacity) return false;
  } while (!header_->reserved_total.compare_exchange_weak(reserved, reserved + creates,
                                                          std::memory_order_relaxed));
  return true;
}

void CounterTable::ReleaseCapacity(uint64_t n) const {
  header_->reserved_total.fetch_sub(n, std::memory_order_relaxed);
}

}  // namespace countersd
