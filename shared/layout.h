// The structs that live in the map file: its format. Internal to shared/
// (other code uses CounterTable), except the magic, which counterctl
// inspect uses to tell a map file from a snapshot file. Every struct here
// is plain data with its own name; the per-process handle that uses them
// is CounterTable.
//
// The live map is host-native: its integers are in this host's byte order
// and its atomics and semaphores are this host's (sem_t, futex words). It
// is never copied to another host; counters.snap is the portable format
// (snapshot_format.h). Validation (table_file.cc) refuses a map of another
// byte order or ABI with a message that says so.
//
// File layout (offsets in the header, every section 4096-aligned):
//
//   [TableHeader        4096 bytes]
//   [RegionShared  x regions      ]  one lock stripe per region, 128 bytes each
//   [ProcessSlot   x kProcessSlots]  per-process stats, 64 bytes each
//   [BatchJournal  x kJournals    ]  undo logs of in-flight batches
//   [Slot          x regions x region_slots]
//
// The hash table is partitioned: a key's hash (key_hash.h) picks its region,
// and the key lives in that region's open-addressing (linear probing) slot
// range. A region is guarded by its own stripe lock, so every slot is only
// ever written by the holder of one lock, and a snapshot can copy one
// region at a time (snapshot_staging.cc).
//
// "The owner" below is the process that opened the table (the supervisor),
// in Open before it forks anybody, or in RecoverDeadProcess after it reaped
// the process whose state it repairs.
#ifndef COUNTERSD_SHARED_LAYOUT_H_
#define COUNTERSD_SHARED_LAYOUT_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

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
//     owner, in Open or in RecoverDeadProcess of the dead holder).
//  2. state == kLive => key[0..key_len) is a valid key (key.h), hash ==
//     HashKey(key), the hash's region is this slot's, and the key is in no
//     other live slot. Open checks it for every live slot (table_file.cc).
//  3. `seq` is incremented (release) before and after any change of key or
//     state, so it is odd while the slot is being rewritten; lock-free
//     readers (Get, List, the snapshot copy) retry when seq is odd or changed.
//     Both sides access key, key_len, state and hash atomically, through the
//     seqlock's accessors (table_internal.h).
//  4. value is only read or written as a whole 8-byte atomic.
//  5. Every reader of the key goes through stored_key() (or LoadKey, without
//     the stripe), which never reads past `key` whatever key_len holds.
struct Slot {
  std::atomic<uint32_t> seq;
  uint32_t state;  // SlotState
  uint64_t hash;
  std::atomic<int64_t> value;
  uint16_t key_len;
  char key[kMaxKeyBytes];
  char pad[6];

  std::string_view stored_key() const {
    return {key, std::min<size_t>(key_len, kMaxKeyBytes)};
  }
};
static_assert(sizeof(Slot) == 192, "Slot size is part of the layout");

// One lock stripe and the region of slots it guards. 128 bytes: the lock
// word and the region's bookkeeping share one line; nothing of another
// stripe does. Invariants:
//  1. Every field but `lock` and `live` is read and written only by the
//     holder of `lock` (or the owner, as for Slot).
//  2. used >= live, and the region's slots hold exactly `live` live ones and
//     `used` non-empty ones, except inside a critical section.
//  3. inserting != 0 only inside an insert's critical section (undo record).
//  4. copied_epoch == TableHeader::snapshot_epoch => the region's staging
//     copy is the region as of that epoch's start; dirty == 0 => the region
//     equals its staging copy.
//  5. key_set_version changes (+1, release, under `lock`) after every change
//     of the region's set of live keys by a writer: each insert
//     (table_insert.cc, single keys and batches) and each Delete
//     (counter_table.cc), after the slot's seqlock closes. So a reader that
//     loads it (acquire) before scanning the region, and later loads the same
//     value again, knows that no key was inserted or deleted since the scan
//     began (modulo 2^32 changes between the two loads). Repairs that only
//     remove keys (crash repair, a batch's undo) need not change it: readers
//     of the per-process sorted key index (sorted_key_index.h) check every
//     slot they use still holds its key; Open's compaction, which moves
//     keys, runs before any process has an index. A map made before this
//     field existed has 0 here, like a fresh one: the index treats a region
//     it never scanned as unknown whatever this holds, so no layout version
//     bump is needed.
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
  // Changed by every insert and delete (invariant 5). Written under `lock`;
  // read without it (acquire) by List's sorted key index.
  std::atomic<uint32_t> key_set_version;
  char pad[128 - sizeof(StripeLockShared) - 24];
};
static_assert(sizeof(RegionShared) == 128);

// Per-process stats (handlers, aggregator). Invariants:
//  1. `pid` is claimed by the process itself, by CAS from 0
//     (RegisterProcess), and freed only by the owner (RecoverDeadProcess
//     after reaping that pid; Open zeroes every slot).
//  2. The other fields are written only by the process that claimed the
//     slot, with relaxed atomics; anyone reads them.
// Process slots are reset at every Open: nothing in them outlives the
// daemon that wrote it.
struct alignas(64) ProcessSlot {
  std::atomic<int32_t> pid;    // 0: free.
  std::atomic<uint32_t> role;  // ProcessRole
  std::atomic<uint64_t> calls;
  std::atomic<uint64_t> errors;
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
//  1. `owner` != 0 means the journal is claimed by that pid: claimed by CAS
//     from 0 by the batch's process, released by it, or freed by the owner
//     after the pid died.
//  2. active, count and entries are written only by the claimer, while it
//     holds every stripe the batch touches (or by the owner's repair).
//  3. `active` == 1 means entries[0..count) describe changes that may have
//     been applied and must be undone if `owner` dies. An entry is complete
//     before the change it describes is made. The batch commits by storing
//     active = 0 (one store) before it unlocks any stripe.
struct alignas(64) BatchJournal {
  std::atomic<int32_t> owner;
  std::atomic<uint32_t> active;
  uint32_t count;
  uint32_t pad[13];
  JournalEntry entries[kMaxBatchOps];
};

// The first page. Invariants:
//  1. The static fields (up to header_crc) are written once, by Create,
//     before the file is mapped by anyone else, and are covered by
//     header_crc; validation (table_file.cc) checks each against the
//     geometry its capacity implies.
//  2. clean_shutdown and boot_id are written by the owner only: cleared and
//     set at Open, set by MarkCleanShutdown when no other process runs.
//  3. live_total is changed by writers next to a region's `live` (relaxed)
//     and recounted by the owner; it is a hint (see below).
//  4. snapshot_epoch is bumped only by the snapshotter and reset by Open;
//     writers read it under their region locks.
//  5. snapshot follows the protocol of control.h.
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
