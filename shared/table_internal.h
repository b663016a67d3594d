// What the files of the counter table (counter_table.cc, table_file.cc,
// table_insert.cc, table_batch.cc, crash_repair.cc, snapshot_staging.cc,
// process_slots.cc) share: the inline accessors of CounterTable's private
// geometry, the seqlock of a slot, the probe sequence and the errors that
// several of them return. Internal to shared/; nothing outside includes it.
#ifndef COUNTERSD_SHARED_TABLE_INTERNAL_H_
#define COUNTERSD_SHARED_TABLE_INTERNAL_H_

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/status/status.h"
#include "shared/coding.h"
#include "shared/counter_table.h"
#include "shared/key.h"
#include "shared/layout.h"

namespace countersd {
namespace table_internal {

// The pid that stripe-lock owner words and journals record for this
// process. getpid() is a system call in glibc >= 2.25 and the lock path
// needs it on every call, so it is cached, and refreshed in fork children.
int32_t Pid();

// Calls the test hook (CounterTable::SetCriticalSectionHookForTest), if one
// is set, with a stripe held and the slot about to be written.
void RunHook(std::string_view key);
// The key RunHook is called with once a session's entry is recorded, just
// before its journal commits (session_table.cc): no valid key has control
// characters, so a test can stop a process exactly there.
inline constexpr std::string_view kSessionEntryHookKey = "\x01session-entry";
// Calls the snapshot copy test hook (CounterTable::SetSnapshotCopyHookForTest),
// if one is set, after `copied` counters of region r were copied.
void RunCopyHook(uint32_t r, uint32_t copied);

inline uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// A table's geometry, computed from its capacity (table_file.cc, "Sizing").
struct Geometry {
  uint32_t regions;
  uint32_t region_slots;
  uint64_t regions_offset;
  uint64_t processes_offset;
  uint64_t journals_offset;
  uint64_t slots_offset;
  uint64_t attach_offset;    // not in the header: derived (AttachOffset)
  uint64_t sessions_offset;  // not in the header: derived (SessionsOffset)
  uint64_t file_size;
};
Geometry ComputeGeometry(uint64_t capacity);

// Upgrades the map file open on `fd` from layout 2 or 3 in place, when it
// is one the start would trust (table_upgrade.cc); anything else is left
// as it is.
absl::Status UpgradeInPlace(Sys* sys, const std::string& path, int fd);

// Where an older layout's file ended (the size a map of that version has).
uint64_t LayoutEnd(const Geometry& g, uint32_t layout_version);

// Where the attach slots start (layout.h): the page after the slot array.
// Derived from the header's geometry, not recorded in it, so the static
// fields and their checksum are those of layout version 2.
inline uint64_t AttachOffset(uint64_t slots_offset, uint32_t regions, uint32_t region_slots) {
  return RoundUp(slots_offset + uint64_t{regions} * region_slots * sizeof(layout::Slot),
                 layout::kPage);
}

// Where the sessions start (layout.h): after the attach slots, the
// session directory's page, then the slots. Derived, like AttachOffset.
inline uint64_t SessionsOffset(uint64_t attach_offset) {
  return RoundUp(attach_offset + kAttachSlots * sizeof(layout::AttachSlot), layout::kPage);
}

// A key's first probe position in a region of `n` slots (the hash's low
// 32 bits scaled to n), and the next one (linear probing, wrapping).
inline uint32_t FirstProbe(uint64_t hash, uint32_t n) {
  return static_cast<uint32_t>(((hash & 0xffffffffULL) * n) >> 32);
}
inline uint32_t NextProbe(uint32_t i, uint32_t n) { return i + 1 == n ? 0 : i + 1; }

// Key bytes equal? `key.size()` is the slot's key_len (<= kMaxKeyBytes).
// Word compares with an overlapping last word; slot keys are kMaxKeyBytes
// long buffers.
inline bool KeyEquals(const char* slot_key, std::string_view key) {
  const size_t n = key.size();
  const char* q = key.data();
  if (n < 8) return std::memcmp(slot_key, q, n) == 0;
  for (size_t i = 0; i + 8 < n; i += 8) {
    if (DecodeFixed64(slot_key + i) != DecodeFixed64(q + i)) return false;
  }
  return DecodeFixed64(slot_key + n - 8) == DecodeFixed64(q + n - 8);
}

// ---- The slot seqlock (layout.h, Slot invariant 3). ----
//
// How it works (Boehm, "Can seqlocks get along with programming language
// memory models?", MSPC 2012):
//  1. A writer, holding the region's stripe, makes seq odd (relaxed), then
//     a release fence, then stores the fields, then makes seq even with a
//     release store (RewriteSlot).
//  2. A reader loads seq (acquire), loads the fields, then an acquire fence,
//     then loads seq again (ReadSlot). The same even value twice means no
//     writer ran in between: what it loaded is one whole version of the slot.
//  3. Readers and writers overlap, so in the C++ memory model every field a
//     reader loads must be an atomic access on BOTH sides, or the program
//     has a data race (undefined behaviour, and what ThreadSanitizer
//     reports). The accessors below are those accesses, all relaxed: seq and
//     the fences give the order. A relaxed load or store of up to 8 aligned
//     bytes is a plain mov on x86-64 and a plain ldr/str on AArch64. Measured
//     with table_bench and List/ForEach microbenchmarks against the plain
//     accesses and memcpy they replace: Get, List and ForEach no slower; an
//     insert + delete of a 160-byte key ~7% slower (word stores, not memcpy).
// Every write of a slot's state, hash, key_len or key goes through the
// Store* accessors, and every read without the region's stripe through
// ReadSlot or LoadState. Code that holds the stripe (Find, the insert probe,
// the snapshot copy) or runs while nobody else can (validation and repair in
// Open) reads the fields directly: no other thread writes them then.
//
// The key block. key_len (offset 24) and key (offset 26) are 2-byte aligned
// as fields, but the 168 bytes from key_len to the slot's end are 21
// aligned 8-byte words (the slot array is page aligned, slots are 192
// bytes). The key is stored and loaded as those words, key_len included:
// ceil((2 + key_len) / 8) of them. The objects there are a uint16_t and
// chars, so the words are accessed through a may_alias type with the
// __atomic builtins (std::atomic_ref would drop the attribute).
namespace slot_key_block {
using Word = uint64_t __attribute__((__may_alias__));
inline constexpr size_t kOffset = offsetof(layout::Slot, key_len);
inline constexpr size_t kWords = (sizeof(layout::Slot) - kOffset) / sizeof(Word);
static_assert(kOffset % alignof(uint64_t) == 0 && sizeof(layout::Slot) % alignof(uint64_t) == 0);
static_assert(offsetof(layout::Slot, key) == kOffset + sizeof(uint16_t));
static_assert(sizeof(uint16_t) + kMaxKeyBytes <= kWords * sizeof(Word));
inline size_t WordsFor(size_t key_len) {
  return (sizeof(uint16_t) + key_len + sizeof(Word) - 1) / sizeof(Word);
}
inline Word* Of(layout::Slot* s) {
  return reinterpret_cast<Word*>(reinterpret_cast<char*>(s) + kOffset);
}
inline const Word* Of(const layout::Slot* s) {
  return reinterpret_cast<const Word*>(reinterpret_cast<const char*>(s) + kOffset);
}
}  // namespace slot_key_block

// Writer side: REQUIRES the region's stripe held (or the owner, in Open and
// repair), inside RewriteSlot's `change` once the slot may be visible.
inline void StoreState(layout::Slot* s, uint32_t state) {
  std::atomic_ref<uint32_t>(s->state).store(state, std::memory_order_relaxed);
}
inline void StoreHash(layout::Slot* s, uint64_t hash) {
  std::atomic_ref<uint64_t>(s->hash).store(hash, std::memory_order_relaxed);
}
// Stores key_len and the key. REQUIRES: key.size() <= kMaxKeyBytes.
inline void StoreKey(layout::Slot* s, std::string_view key) {
  const uint16_t len = static_cast<uint16_t>(key.size());
  const size_t n = slot_key_block::WordsFor(len);
  uint64_t words[slot_key_block::kWords];
  words[n - 1] = 0;  // the bytes after the key in its last word
  std::memcpy(words, &len, sizeof len);
  std::memcpy(reinterpret_cast<char*>(words) + sizeof len, key.data(), len);
  slot_key_block::Word* block = slot_key_block::Of(s);
  for (size_t i = 0; i < n; ++i) __atomic_store_n(&block[i], words[i], __ATOMIC_RELAXED);
}

// Reader side, without the stripe. A load writes nothing: the const_casts
// only satisfy std::atomic_ref, whose T cannot be const in C++20.
inline uint32_t LoadState(const layout::Slot* s) {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(s->state)).load(std::memory_order_relaxed);
}
inline uint64_t LoadHash(const layout::Slot* s) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(s->hash)).load(std::memory_order_relaxed);
}
// A slot's key block as loaded: the words themselves, so that loading it is
// one copy.
struct KeyCopy {
  uint64_t words[slot_key_block::kWords];
  uint16_t len;  // key_len clamped to kMaxKeyBytes (layout.h, Slot invariant 5)
  std::string_view view() const {
    return {reinterpret_cast<const char*>(words) + sizeof(uint16_t), len};
  }
};
inline void LoadKey(const layout::Slot* s, KeyCopy* out) {
  const slot_key_block::Word* block = slot_key_block::Of(s);
  out->words[0] = __atomic_load_n(&block[0], __ATOMIC_RELAXED);
  uint16_t len;
  std::memcpy(&len, out->words, sizeof len);
  out->len = std::min<uint16_t>(len, kMaxKeyBytes);
  for (size_t i = 1, n = slot_key_block::WordsFor(out->len); i < n; ++i) {
    out->words[i] = __atomic_load_n(&block[i], __ATOMIC_RELAXED);
  }
}

// Makes seq odd, runs `change` (which stores through the accessors above),
// makes it even again. Tolerates a seq left odd by a dead writer.
template <typename F>
void RewriteSlot(layout::Slot* s, F change) {
  uint32_t seq = s->seq.load(std::memory_order_relaxed);
  if (seq & 1) ++seq;
  s->seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  change();
  s->seq.store(seq + 2, std::memory_order_release);
}

// A consistent copy of a slot's key and value, read without locks.
struct SlotView {
  uint32_t state;
  uint64_t hash;
  int64_t value;
  KeyCopy key;
  std::string_view key_view() const { return key.view(); }
};

// Returns false if the slot kept changing (a writer died mid-change and has
// not been repaired yet): the caller skips it.
inline bool ReadSlot(const layout::Slot* s, SlotView* out) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint32_t s1 = s->seq.load(std::memory_order_acquire);
    if (s1 & 1) {
      if (attempt > 16) sched_yield();
      continue;
    }
    out->state = LoadState(s);
    if (out->state == layout::kLive) {
      out->hash = LoadHash(s);
      LoadKey(s, &out->key);
      out->value = s->value.load(std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) == s1) return true;
  }
  return false;
}

// REQUIRES: the region's lock held by this process, about to be changed.
// The first change since the region's last copy records when it was made
// (control.h, SnapshotControl invariant 4).
inline void MarkDirty(layout::RegionShared* reg) {
  if (reg->dirty.load(std::memory_order_relaxed) == 0)
    reg->dirty.store(ChangeStamp(), std::memory_order_relaxed);
}

// RegionShared invariant 5 (layout.h): the region's set of live keys has
// just changed. REQUIRES: the region's lock held, the slot's seqlock closed.
inline void BumpKeySetVersion(layout::RegionShared* reg) {
  reg->key_set_version.store(reg->key_set_version.load(std::memory_order_relaxed) + 1,
                             std::memory_order_release);
}

absl::Status TableFull(uint64_t capacity);
absl::Status Overflow(std::string_view key, int64_t value, int64_t delta);
absl::Status NotFound(std::string_view key);
// UNAVAILABLE: an attached handle's daemon is gone (TableHeader invariant 8).
absl::Status Detached();

}  // namespace table_internal

// ---- CounterTable's inline private accessors. ----

inline layout::RegionShared* CounterTable::region(uint32_t r) const { return regions_base_ + r; }
inline layout::Slot* CounterTable::slots(uint32_t r) const {
  return slots_base_ + uint64_t{r} * region_slots_;
}
inline layout::BatchJournal* CounterTable::journal(uint32_t j) const {
  return reinterpret_cast<layout::BatchJournal*>(base_ + header_->journals_offset) + j;
}
inline layout::ProcessSlot* CounterTable::process_slot(uint32_t i) const {
  return reinterpret_cast<layout::ProcessSlot*>(base_ + header_->processes_offset) + i;
}
inline uint32_t CounterTable::RegionOf(uint64_t hash) const {
  // regions is a power of two; take the high bits.
  return region_shift_ == 64 ? 0 : static_cast<uint32_t>(hash >> region_shift_);
}
inline int32_t CounterTable::Holder() const {
  return attach_token_ != 0 ? attach_token_ : table_internal::Pid();
}
inline void CounterTable::LockRegion(uint32_t r) const { StripeLock(&region(r)->lock, Holder()); }
inline void CounterTable::UnlockRegion(uint32_t r) const {
  StripeUnlock(&region(r)->lock, Holder());
}

// The attacher's half of the fence (table_attach.cc): its stripe's owner
// word was stored by a locked CAS, then this load; the owner stores 0 to
// the incarnation, then loads the owner words. Each side stores, then
// loads what the other stores, so at least one sees the other: either
// this write is refused, or the owner waits for the stripe. On x86 the
// CAS is a full barrier already; elsewhere it takes a fence.
inline bool CounterTable::Admitted() const {
  if (incarnation_ == 0) return true;
#if defined(__x86_64__) || defined(__i386__)
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  return header_->attach_incarnation.load(std::memory_order_seq_cst) == incarnation_;
}

// REQUIRES: region r locked by this process; `epoch` read while holding it
// (for a batch: one read while holding every region of the batch). The
// common case, nothing pending, stays inline on the write path.
inline void CounterTable::CopyRegionIfPending(uint32_t r, uint32_t epoch) const {
  if (region(r)->copied_epoch != epoch && staging_ != nullptr) CopyRegion(r, epoch);
}

// REQUIRES: region r locked (or nobody else running, in Open).
inline layout::Slot* CounterTable::Find(uint32_t r, std::string_view key, uint64_t hash) const {
  const uint32_t n = region_slots_;
  layout::Slot* base = slots(r);
  uint32_t i = table_internal::FirstProbe(hash, n);
  for (uint32_t probes = 0; probes < n; ++probes) {
    layout::Slot* s = &base[i];
    if (s->state == layout::kEmpty) return nullptr;
    if (s->hash == hash && s->state == layout::kLive && s->key_len == key.size() &&
        table_internal::KeyEquals(s->key, key)) {
      return s;
    }
    i = table_internal::NextProbe(i, n);
  }
  return nullptr;
}

}  // namespace countersd

#endif  // COUNTERSD_SHARED_TABLE_INTERNAL_H_
