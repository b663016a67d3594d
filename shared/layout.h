// The structs that live in the map file. Internal to shared/: other code uses
// CounterTable. Every struct here is plain data with its own name; the
// per-process handle that uses them is CounterTable.
//
// File layout (offsets in the header, every section 4096-aligned):
//
//   [TableHeader        4096 bytes]
//   [RegionShared  x regions      ]  one lock stripe per region, 128 bytes each
//   [ProcessSlot   x kProcessSlots]  per-process stats, 64 bytes each
//   [BatchJournal  x kJournals    ]  undo logs of in-flight batches
//   [Slot          x regions x region_slots]
//
// The hash table is partitioned: a key's hash picks its region, and the key
// lives in that region's open-addressing (linear probing) slot range. A
// region is guarded by its own stripe lock, so every slot is only ever
// written by the holder of one lock, and a snapshot can copy one region at a
// time (see counter_table.cc).
#ifndef COUNTERSD_SHARED_LAYOUT_H_
#define COUNTERSD_SHARED_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shared/control.h"
#include "shared/key.h"
#include "shared/limits.h"
#include "shared/stripe_lock.h"

namespace countersd::layout {

inline constexpr char kMagic[8] = {'C', 'N', 'T', 'R', 'S', 'D', 'M', 'P'};
// Bump on any change of the structs below.
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr size_t kPage = 4096;
inline constexpr size_t kJournals = 32;
// kProcessSlots and kMaxBatchOps (a journal's capacity) are in limits.h.

enum SlotState : uint32_t { kEmpty = 0, kLive = 1, kTombstone = 2 };

// One counter. Invariants:
//  1. Written only by the holder of its region's stripe lock (or by the
//     owner during Open, before any other process exists).
//  2. state == kLive => key[0..key_len) is a valid key, hash == Hash(key),
//     and the key is in no other live slot.
//  3. `seq` is incremented (release) before and after any change of key or
//     state, so it is odd while the slot is being rewritten; lock-free
//     readers (List, snapshot readers) retry when seq is odd or changed.
//  4. value is only read or written as a whole 8-byte atomic.
struct Slot {
  std::atomic<uint32_t> seq;
  uint32_t state;  // SlotState
  uint64_t hash;
  std::atomic<int64_t> value;
  uint16_t key_len;
  char key[kMaxKeyBytes];
  char pad[6];
};
static_assert(sizeof(Slot) == 192, "Slot size is part of the layout");

// One lock stripe and the region of slots it guards. 128 bytes: the lock
// word and the region's bookkeeping share one line; nothing of another
// stripe does.
struct alignas(64) RegionShared {
  StripeLockShared lock;
  // Live slots in the region. Written under `lock`; read without it (relaxed)
  // to sum the table's size.
  std::atomic<uint32_t> live;
  // Live + tombstone slots (probe chains end at an empty slot). Under `lock`.
  uint32_t used;
  // The snapshot epoch (TableHeader::snapshot_epoch) this region's staging
  // copy belongs to. Written under `lock` by whoever copies the region.
  uint32_t copied_epoch;
  // The single-slot undo record of an insert in progress: slot index within
  // the region + 1, or 0. Written under `lock`.
  uint32_t inserting;
  // 1 when the region may differ from its copy in the staging area: set by
  // writers under `lock`, cleared when the region is copied. A snapshot only
  // copies dirty regions; the others' staging copies are still exact.
  std::atomic<uint32_t> dirty;
  char pad[128 - sizeof(StripeLockShared) - 20];
};
static_assert(sizeof(RegionShared) == 128);

// Per-process stats (handlers, aggregator). Claimed by CAS of `pid` from 0.
struct alignas(64) ProcessSlot {
  std::atomic<int32_t> pid;    // 0: free.
  std::atomic<uint32_t> role;  // ProcessRole
  std::atomic<uint64_t> calls;
  std::atomic<uint64_t> errors;
  std::atomic<int64_t> started_unix_ns;
  std::atomic<uint32_t> ready;  // 1 once the process serves.
};
static_assert(sizeof(ProcessSlot) == 64);

struct JournalEntry {
  uint32_t region;
  uint32_t slot;  // index within the region
  int64_t old_value;
  uint32_t created;  // 1 if the batch created the counter
  uint32_t pad;
};

// Undo log of one in-flight batch. Invariants:
//  1. `owner` != 0 means the journal is claimed by that pid.
//  2. `active` == 1 means entries[0..count) describe changes that may have
//     been applied and must be undone if `owner` dies. The batch commits by
//     storing active = 0 (one store) before it unlocks any stripe.
struct alignas(64) BatchJournal {
  std::atomic<int32_t> owner;
  std::atomic<uint32_t> active;
  uint32_t count;
  uint32_t pad[13];
  JournalEntry entries[kMaxBatchOps];
};

// The first page. Static fields are written once at creation and covered by
// `header_crc`; the rest are runtime fields.
struct TableHeader {
  char magic[8];
  uint32_t layout_version;
  uint32_t header_size;
  uint32_t slot_size;
  uint32_t region_size;  // sizeof(RegionShared)
  uint32_t process_slot_size;
  uint32_t journal_size;
  uint64_t capacity;      // max live counters
  uint32_t regions;       // power of two
  uint32_t region_slots;  // slots per region
  uint64_t file_size;
  uint64_t regions_offset;
  uint64_t processes_offset;
  uint64_t journals_offset;
  uint64_t slots_offset;
  int64_t created_unix_ns;
  uint32_t header_crc;  // crc32 of the bytes before this field
  uint32_t pad0;
  // ---- runtime fields ----
  // 1 after a clean shutdown; cleared when a new owner opens the file.
  std::atomic<uint32_t> clean_shutdown;
  uint32_t pad1;
  char boot_id[40];  // boot id of the last owner, NUL-padded.
  std::atomic<int64_t> opened_unix_ns;
  // Live counters in the whole table: a fast hint for the capacity check,
  // changed next to a region's `live`. A process killed between the two
  // changes can leave it off by one until the next Open recounts; so near
  // the limit the check sums the regions' `live` instead (see
  // CounterTable::WouldExceedCapacity), and size() always does.
  alignas(64) std::atomic<uint64_t> live_total;
  // Bumped by the snapshotter to start a snapshot; read by writers under
  // their region locks. Its own line: read on every write, written rarely.
  alignas(64) std::atomic<uint32_t> snapshot_epoch;
  alignas(64) SnapshotControl snapshot;  // see control.h
};
static_assert(sizeof(TableHeader) <= kPage);

}  // namespace countersd::layout

#endif  // COUNTERSD_SHARED_LAYOUT_H_
