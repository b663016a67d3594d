// How crash repair works
// ======================
//
// A process can die at any instruction, holding stripes. What it may leave:
//  - a half-done insert: the region's `inserting` word names the slot (it
//    is set before the slot is touched), and the slot's seq may be odd;
//  - an uncommitted batch: its journal is `active`, and entries[0..count)
//    describe every change it may have made (each entry is written before
//    its change);
//  - odd seqlocks, stripes whose owner word is its pid, a claimed journal
//    and a claimed process slot.
// A completed single-key operation is one 8-byte store (or a finished
// seqlocked rewrite) and is never undone; an uncommitted batch is undone
// entirely (the caller never got an OK).
//
// Two entry points repair the same things:
//  - RecoverDeadProcess(pid): the owner, after reaping pid, while the other
//    processes run. It touches only what pid held: the batch is undone while
//    pid still "holds" the batch's stripes (nobody else can see the
//    half-applied state), then each stripe pid held is repaired and
//    released. It never takes a lock: another child may have died holding
//    one, and only the owner can release it. The places of the capacity pid
//    had reserved (table_insert.cc) are given back: a batch's whole
//    reservation from its journal, one per rolled-back insert. A region
//    pid was copying for a snapshot is left dirty and not copied for the
//    epoch (snapshot_staging.cc, step 5), to be copied again.
//  - RepairAfterCrash, from Open, single-threaded before any child of the
//    new owner maps the file (processes attached to the previous one are
//    fenced out by then: table_attach.cc) and only after validation
//    (table_file.cc) accepted every slot it will read: every journal, every
//    region, every process slot, the attach slots of dead attachers, plus
//    compaction of regions with tombstones (deletes leave tombstones that
//    inserts reuse; Open rebuilds the rest away), and the recount of the
//    capacity's reservations (nothing is in flight then).
#include <algorithm>
#include <cstring>
#include <vector>

#include "shared/table_internal.h"

namespace countersd {

using layout::BatchJournal;
using layout::JournalEntry;
using layout::ProcessSlot;
using layout::RegionShared;
using layout::Slot;
using table_internal::FirstProbe;
using table_internal::MarkDirty;
using table_internal::NextProbe;
using table_internal::RewriteSlot;

namespace {

// REQUIRES: region r is held by a dead process (or nobody runs, in Open).
// Rolls back a half-done insert, completes odd seqlocks, recounts. Returns
// the number of inserts rolled back (0 or 1).
int RepairRegionSlots(RegionShared* reg, Slot* base, uint32_t n) {
  int rolled_back = 0;
  if (reg->inserting != 0) {
    Slot* s = &base[reg->inserting - 1];
    RewriteSlot(s, [&] { table_internal::StoreState(s, layout::kTombstone); });
    reg->inserting = 0;
    rolled_back = 1;
  }
  uint32_t live = 0, used = 0;
  for (uint32_t i = 0; i < n; ++i) {
    Slot* s = &base[i];
    if (s->seq.load(std::memory_order_relaxed) & 1) s->seq.fetch_add(1);
    if (s->state != layout::kEmpty) ++used;
    if (s->state == layout::kLive) ++live;
  }
  reg->live.store(live, std::memory_order_relaxed);
  reg->used = used;
  return rolled_back;
}

}  // namespace

void CounterTable::UndoJournal(BatchJournal* j) {
  for (uint32_t k = std::min<uint32_t>(j->count, kMaxBatchOps); k-- > 0;) {
    const JournalEntry& e = j->entries[k];
    if (e.region >= header_->regions || e.slot >= header_->region_slots) continue;
    Slot* s = &slots(e.region)[e.slot];
    if (e.created == layout::kUndoCreate) {
      RewriteSlot(s, [&] { table_internal::StoreState(s, layout::kTombstone); });
    } else if (e.created == layout::kUndoDelete) {
      // The key is live again: its set of keys changed (RegionShared
      // invariant 5); the region's counts are recounted by the caller.
      s->value.store(e.old_value, std::memory_order_relaxed);
      RewriteSlot(s, [&] { table_internal::StoreState(s, layout::kLive); });
      table_internal::BumpKeySetVersion(region(e.region));
    } else {
      s->value.store(e.old_value, std::memory_order_relaxed);
    }
  }
  UndoSessionEntry(j);
  j->count = 0;
  j->active.store(0, std::memory_order_release);
}

OpenReport CounterTable::RepairAfterCrash() {
  OpenReport rep;
  for (uint32_t j = 0; j < layout::kJournals; ++j) {
    BatchJournal* bj = journal(j);
    if (bj->active.load() != 0) {
      UndoJournal(bj);
      ++rep.batches_rolled_back;
    }
    bj->owner.store(0);
  }
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    std::memset(static_cast<void*>(process_slot(i)), 0, sizeof(ProcessSlot));
  }
  std::memset(static_cast<void*>(&header_->retired_connections), 0,
              sizeof header_->retired_connections);
  std::memset(static_cast<void*>(&header_->retired_attach_calls), 0,
              sizeof header_->retired_attach_calls);
  FreeDeadAttachSlotsAtOpen();
  RepairSessionsAtOpen();
  uint64_t total = 0;
  for (uint32_t r = 0; r < header_->regions; ++r) {
    RegionShared* reg = region(r);
    rep.inserts_rolled_back += RepairRegionSlots(reg, slots(r), header_->region_slots);
    if (reg->used > reg->live.load()) {
      rep.tombstones_reclaimed += reg->used - reg->live.load();
      CompactRegion(r);
    }
    reg->copied_epoch = 0;
    total += reg->live.load();
  }
  header_->reserved_total.store(total);  // nothing is in flight
  return rep;
}

// Rebuilds a region without tombstones. Only touches pages of regions that
// have tombstones. REQUIRES: nobody else uses the region.
void CounterTable::CompactRegion(uint32_t r) {
  const uint32_t n = header_->region_slots;
  Slot* base = slots(r);
  struct LiveSlot {
    uint64_t hash;
    int64_t value;
    uint16_t key_len;
    char key[kMaxKeyBytes];
  };
  std::vector<LiveSlot> live;
  for (uint32_t i = 0; i < n; ++i) {
    const Slot& s = base[i];
    if (s.state != layout::kLive) continue;
    const std::string_view key = s.stored_key();
    LiveSlot l;
    l.hash = s.hash;
    l.value = s.value.load();
    l.key_len = static_cast<uint16_t>(key.size());
    std::memcpy(l.key, key.data(), key.size());
    live.push_back(l);
  }
  std::memset(static_cast<void*>(base), 0, uint64_t{n} * sizeof(Slot));
  for (const LiveSlot& l : live) {
    uint32_t i = FirstProbe(l.hash, n);
    while (base[i].state != layout::kEmpty) i = NextProbe(i, n);
    Slot& s = base[i];
    table_internal::StoreHash(&s, l.hash);
    s.value.store(l.value);
    table_internal::StoreKey(&s, std::string_view(l.key, l.key_len));
    table_internal::StoreState(&s, layout::kLive);
  }
  region(r)->live.store(static_cast<uint32_t>(live.size()));
  region(r)->used = static_cast<uint32_t>(live.size());
}

RecoveryReport CounterTable::RecoverDeadProcess(pid_t pid) {
  RecoveryReport rep;
  // Places of the capacity the dead process held (table_insert.cc): given
  // back as its work is undone; the recounts below fix the rest.
  uint64_t release = 0;
  // Regions whose recount the undone batches' release already covers.
  std::vector<bool> in_undone_batch(header_->regions, false);
  // 1. Uncommitted batches of the dead process: undo them while it still
  //    holds their stripes, so nobody sees the half-applied state. An
  //    active journal holds the batch's whole reservation (BatchJournal
  //    invariant 4), whatever part of it the batch had used.
  for (uint32_t j = 0; j < layout::kJournals; ++j) {
    BatchJournal* bj = journal(j);
    if (bj->owner.load() != pid) continue;
    if (bj->active.load() != 0) {
      for (uint32_t k = 0; k < std::min<uint32_t>(bj->count, kMaxBatchOps); ++k) {
        const JournalEntry& e = bj->entries[k];
        // A created counter's place is in the reservation released below;
        // a deleted one's was never given back (an uncommitted delete
        // keeps it): neither region's recount changes the reservation.
        if (e.created != layout::kUndoValue && e.region < header_->regions) {
          in_undone_batch[e.region] = true;
        }
      }
      release += bj->reserved;
      UndoJournal(bj);
      ++rep.batches_rolled_back;
    }
    bj->owner.store(0);
    ++rep.journals_freed;
  }
  // 2. Stripes it held: roll back a half insert, finish odd seqlocks,
  //    recount, release.
  int64_t live_delta = 0;  // recounts of regions in no undone batch
  for (uint32_t r = 0; r < header_->regions; ++r) {
    RegionShared* reg = region(r);
    if (reg->lock.owner.load() != pid) continue;
    // No staging copy here. If the dead process completed a copy for the
    // current epoch, it made it before it changed anything, and it stands.
    // If it died inside the copy, the copy was not published
    // (snapshot_staging.cc, step 5): the region stays not copied for this
    // epoch, and dirty, so the next holder of its lock copies it whole.
    MarkDirty(reg);
    const int64_t live_before = reg->live.load();
    const int rolled_back = RepairRegionSlots(reg, slots(r), header_->region_slots);
    rep.inserts_rolled_back += rolled_back;
    if (rolled_back != 0) {
      // A single-key insert reserves its place before its undo record, so
      // the rolled-back one held exactly one, counted in `live` or not.
      ++release;
    } else if (!in_undone_batch[r]) {
      // A delete cut short between its slot and its count.
      live_delta += static_cast<int64_t>(reg->live.load()) - live_before;
    }
    if (StripeForceUnlock(&reg->lock, pid)) ++rep.stripes_released;
  }
  // The session locks it held (session_table.cc); an entry it was
  // recording was undone with its journal above.
  rep.stripes_released += ReleaseSessionLocks(pid);
  // 3. The table's reservation count follows.
  const int64_t change = live_delta - static_cast<int64_t>(release);
  if (change != 0) header_->reserved_total.fetch_add(static_cast<uint64_t>(change));
  // 4. Its stats slot, its connection totals kept (process_slots.cc).
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    ProcessSlot* ps = process_slot(i);
    if (ps->pid.load() == pid && RetireConnectionsAndFree(ps, pid)) rep.stats_slot_freed = true;
  }
  return rep;
}

}  // namespace countersd
