// How snapshot staging works (epoch copy-on-write, per region)
// ============================================================
//
// A snapshot must be a point-in-time copy of every counter, with no batch
// half in it, without stopping the table while it is taken.
//
//  1. The staging area is a memfd made at Create or Open (InitStaging) and
//     mapped MAP_SHARED, so every process forked afterwards shares it, and
//     an attached process maps it too from the descriptor the daemon hands
//     it (attach_grant.h). It holds, per region, that region's live
//     counters packed (StagedRegion), as of the region's last copy.
//  2. SnapshotForEach starts epoch e by bumping TableHeader::snapshot_epoch.
//     From then on, whoever next holds a region's lock copies the region
//     into its staging slot before changing it, unless it was already copied
//     for e (RegionShared::copied_epoch): a writer (StripeGuard, or a batch
//     for all of its regions), or the snapshotter itself, which walks the
//     regions one by one and takes each lock just long enough to copy.
//  3. A batch reads the epoch once while it holds all of its regions, so
//     the copy holds the whole batch or none of it.
//  4. A region whose `dirty` flag is clear has not changed since its last
//     copy: the copy is still exact, and is not made again. Writers set the
//     flag under the lock; the copy clears it.
//  5. A copy is published (copied_epoch = e, dirty cleared) only after its
//     last counter is staged. A process killed inside a copy thus leaves
//     the region dirty and not copied for e; crash repair (crash_repair.cc)
//     keeps it so, and the next holder of the lock, often the snapshotter
//     itself, copies it whole. (Publishing first let the snapshotter skip
//     the region and write its half-old staging copy.)
//  6. After the walk the snapshotter reads every region's staging copy:
//     each is the region as of epoch e's start, so together they are the
//     table at one instant (the bump of step 2).
// Increments on a region stop only while that one region is copied.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "absl/time/clock.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::RegionShared;
using layout::Slot;
using table_internal::RoundUp;

// One counter in the staging area.
struct StagedCounter {
  int64_t value;
  uint16_t key_len;
  char key[kMaxKeyBytes];
};
// One region's staging copy. Invariants:
//  1. Written only by the holder of the region's lock, when it copies the
//     region for a new epoch (CopyRegion), or by InitStaging.
//  2. counters[0..count) are the region's live counters as of the epoch in
//     RegionShared::copied_epoch; the snapshotter reads them after that
//     copy, once the lock that made it was released.
struct StagedRegion {
  uint32_t count;
  uint32_t pad;
  uint64_t wal_lsn;  // the region's, as of the copy (write_ahead_log.h, step 4)
  StagedCounter counters[1];  // region_slots of them
};

static size_t StagedRegionBytes(uint32_t region_slots) {
  return RoundUp(offsetof(StagedRegion, counters) + uint64_t{region_slots} * sizeof(StagedCounter),
                 64);
}

StagedRegion* CounterTable::staged(uint32_t r) const {
  return reinterpret_cast<StagedRegion*>(staging_ + r * StagedRegionBytes(region_slots_));
}

size_t CounterTable::StagingBytes() const {
  // After the regions, a copy of every session slot (session_table.cc),
  // when the map has them.
  return uint64_t{header_->regions} * StagedRegionBytes(region_slots_) +
         (sessions_base_ != nullptr ? kSessionSlots * sizeof(layout::SessionSlot) : 0);
}

layout::SessionSlot* CounterTable::staged_session(uint32_t i) const {
  return reinterpret_cast<layout::SessionSlot*>(
             staging_ + uint64_t{header_->regions} * StagedRegionBytes(region_slots_)) +
         i;
}

absl::Status CounterTable::InitStaging() {
  staging_size_ = StagingBytes();
  // Sealed at its size: no process that shares it (an attacher included)
  // can shrink it under the others' mappings, which would be SIGBUS.
  staging_fd_ = memfd_create("countersd-staging", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (staging_fd_ < 0) return ErrnoToStatus(errno, "memfd_create(snapshot staging)");
  if (ftruncate(staging_fd_, static_cast<off_t>(staging_size_)) != 0) {
    return ErrnoToStatus(errno, "ftruncate(snapshot staging)");
  }
  (void)fcntl(staging_fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  ASSIGN_OR_RETURN(void* p, sys_->Mmap(staging_size_, PROT_READ | PROT_WRITE, MAP_SHARED,
                                       staging_fd_, "snapshot staging"));
  staging_ = static_cast<char*>(p);
  // The staging area starts empty: every region differs from it, and no
  // snapshot of this opening holds it yet (so a writer that never manages
  // one is seen, control.h invariant 4).
  header_->snapshot_epoch.store(0);
  const uint32_t now = ChangeStamp();
  for (uint32_t r = 0; r < header_->regions; ++r) {
    region(r)->dirty.store(now);
    region(r)->copied_epoch = 0;
  }
  // A session never used equals its zero staging copy (SessionDirectory
  // invariant 2): only the used ones differ.
  ForEachUsedSession([&](uint32_t i) {
    session_slot(i)->dirty.store(now);
    session_slot(i)->copied_epoch = 0;
  });
  return absl::OkStatus();
}

// REQUIRES: region r locked by this process, not yet copied for `epoch`.
// The copy is published (copied_epoch = epoch, dirty = 0) only once it is
// complete: a copier killed midway leaves the region still to be copied for
// this epoch, by whoever holds its lock next once crash repair released it.
void CounterTable::CopyRegion(uint32_t r, uint32_t epoch) const {
  RegionShared* reg = region(r);
  // An unchanged region's staging copy is still exact.
  if (reg->dirty.load(std::memory_order_relaxed) == 0) {
    reg->copied_epoch = epoch;
    return;
  }
  // Copy only live counters, and skip regions never used: their pages may
  // not even be in memory yet (a new file is sparse).
  StagedRegion* st = staged(r);
  uint32_t n = 0;
  if (reg->used != 0) {
    const Slot* base = slots(r);
    for (uint32_t i = 0; i < region_slots_; ++i) {
      const Slot& s = base[i];
      if (s.state != layout::kLive) continue;
      StagedCounter& c = st->counters[n++];
      const std::string_view key = s.stored_key();
      c.value = s.value.load(std::memory_order_relaxed);
      c.key_len = static_cast<uint16_t>(key.size());
      std::memcpy(c.key, key.data(), key.size());
      table_internal::RunCopyHook(r, n);
    }
  }
  st->count = n;
  st->wal_lsn = reg->wal_lsn;
  // Publish in program order (a SIGKILL stops the copier between two
  // instructions; the region's lock orders it for everybody else).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  reg->copied_epoch = epoch;
  reg->dirty.store(0, std::memory_order_relaxed);
}

uint64_t CounterTable::SnapshotForEach(
    const std::function<void(std::string_view key, int64_t value)>& fn,
    const std::function<void(const SessionRecord&)>& session_fn, WalMarks* marks) {
  const uint32_t regions = header_->regions;
  // The log's floor, read before the epoch begins (write_ahead_log.h, 5).
  if (marks != nullptr) {
    marks->floor = header_->wal_lsn.load(std::memory_order_seq_cst);
    marks->region_lsn.assign(regions, 0);
  }
  // Step 2: start epoch e.
  const uint32_t epoch = header_->snapshot_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  uint64_t max_pause = 0;
  for (uint32_t r = 0; r < regions; ++r) {
    const int64_t t1 = absl::GetCurrentTimeNanos();
    LockRegion(r);
    CopyRegionIfPending(r, epoch);
    UnlockRegion(r);
    max_pause = std::max<uint64_t>(max_pause, absl::GetCurrentTimeNanos() - t1);
    const StagedRegion* st = staged(r);
    if (marks != nullptr) marks->region_lsn[r] = st->wal_lsn;
    for (uint32_t i = 0; i < st->count; ++i) {
      const StagedCounter& c = st->counters[i];
      fn(std::string_view(c.key, c.key_len), c.value);
    }
  }
  // The sessions, as of the same instant: each copied by whoever held its
  // lock first since the bump (a write that changed it, or this walk).
  SessionRecord rec;
  ForEachUsedSession([&](uint32_t i) {
    layout::SessionSlot* s = session_slot(i);
    StripeLock(&s->lock, Holder());
    CopySessionIfPending(i, epoch);
    StripeUnlock(&s->lock, Holder());
    const layout::SessionSlot* st = staged_session(i);
    if (session_fn == nullptr || st->state.load(std::memory_order_relaxed) != layout::kSessionLive) {
      return;
    }
    rec.id.assign(reinterpret_cast<const char*>(st->id), kSessionIdBytes);
    rec.last_write_unix_ns = st->last_write_unix_ns.load(std::memory_order_relaxed);
    rec.highest = st->highest;
    rec.entries.clear();
    // Oldest first, so that a restore appends their values in order.
    for (uint64_t q = st->highest > kSessionWindow ? st->highest - kSessionWindow + 1 : 1;
         q <= st->highest; ++q) {
      const layout::SessionEntry& e = st->entries[q % kSessionWindow];
      if (e.sequence != q || e.count == 0 || e.count > kSessionResponseValues ||
          st->values_end - e.values_at > kSessionResponseValues) {
        continue;
      }
      SessionRecord::Entry& out = rec.entries.emplace_back();
      out.sequence = q;
      out.fingerprint = e.fingerprint;
      out.flag = e.flag != 0;
      out.values.resize(e.count);
      for (uint32_t k = 0; k < e.count; ++k) {
        out.values[k] = st->values[(e.values_at + k) % kSessionResponseValues];
      }
    }
    session_fn(rec);
  });
  return max_pause;
}

uint32_t CounterTable::OldestUncopiedChange() const {
  uint32_t oldest = 0;
  auto consider = [&](uint32_t stamp) {
    if (stamp != 0 && (oldest == 0 || stamp < oldest)) oldest = stamp;
  };
  for (uint32_t r = 0; r < header_->regions; ++r) {
    consider(region(r)->dirty.load(std::memory_order_relaxed));
  }
  ForEachUsedSession(
      [&](uint32_t i) { consider(session_slot(i)->dirty.load(std::memory_order_relaxed)); });
  return oldest;
}

bool CounterTable::ChangedSinceLastSnapshot() const { return OldestUncopiedChange() != 0; }

}  // namespace countersd
