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
//   [AttachSlot    x kAttachSlots ]  attached processes, 128 bytes each
//   [SessionDirectory  4096 bytes ]  the sessions' directory lock (layout 4)
//   [SessionSlot   x kSessionSlots]  exactly-once sessions (session_table.cc)
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
// Bump on any change of the structs below. Version 2: the trust fields of
// the header (clean-shutdown flag, boot id, file identity) under their own
// checksum, the capacity reservation, a batch's reservation in its journal.
// Version 3: the attach slots after the slot array, and the header's
// attach_incarnation (local attach, table_attach.cc); nothing before them
// moved. Version 4: the session directory and slots after the attach
// slots, and the batch journal's session undo in what was its padding;
// nothing before them moved. A map of another version is refused
// (table_file.cc): the start-up then restores the snapshot, which is
// portable across versions.
inline constexpr uint32_t kLayoutVersion = 4;
// The layouts this one upgrades in place (table_upgrade.cc): each is this
// one cut short, at the attach slots (2) or at the sessions (3).
inline constexpr uint32_t kLayoutVersionBeforeAttach = 2;
inline constexpr uint32_t kLayoutVersionBeforeSessions = 3;
inline constexpr size_t kPage = 4096;
inline constexpr size_t kJournals = 32;
// kProcessSlots and kMaxBatchOps (a journal's capacity) are in limits.h.

enum SlotState : uint32_t { kEmpty = 0, kLive = 1, kTombstone = 2 };

// Who holds a stripe (StripeLockShared::owner) or a batch journal
// (BatchJournal::owner): a handler or the aggregator by its pid (> 0, in
// the supervisor's pid namespace), an attached process by its attach
// slot's token (< 0). Pids repeat across pid namespaces (a container that
// shares the volume), attach slots do not.
inline constexpr int32_t AttachToken(uint32_t slot) { return -static_cast<int32_t>(slot) - 1; }
inline constexpr bool IsAttachToken(int32_t owner) {
  return owner < 0 && owner >= -static_cast<int32_t>(kAttachSlots);
}
inline constexpr uint32_t AttachSlotOf(int32_t token) { return static_cast<uint32_t>(-(token + 1)); }

// One counter. Invariants:
//  1. Written only by the holder of its region's stripe lock (or by the
//     owner, in Open or in RecoverDeadProcess of the dead holder).
//  2. state == kLive => key[0..key_len) is a valid key (key.h), hash ==
//     HashKey(key), the hash's region is this slot's, and the key is in no
//     other live slot.
//  3. `seq` is incremented (release) before and after any change of key or
//     state, so it is odd while the slot is being rewritten; lock-free
//     readers (Get, List, the snapshot copy) retry when seq is odd or changed.
//     Both sides access key, key_len, state and hash atomically, through the
//     seqlock's accessors (table_internal.h).
//  4. value is only read or written as a whole 8-byte atomic.
//  5. Every reader of the key goes through stored_key() (or LoadKey, without
//     the stripe), which never reads past `key` whatever key_len holds.
//  6. state == kLive => no slot from the key's home slot (FirstProbe of its
//     hash, table_internal.h) up to this one, probing linearly and
//     wrapping, is empty: Find and Get, which stop at an empty slot, reach
//     it. Inserts keep it by taking the first non-live slot of the chain;
//     deletes leave tombstones, never empty slots; compaction re-inserts.
// Validation at open checks 2 and 6 for every live slot, and the state of
// every slot (table_file.cc), except the slots crash repair will turn into
// tombstones (an insert cut short).
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
//     `used` non-empty ones, except inside a critical section (so while
//     `lock` names a holder). Validation at open checks it for every region
//     no dead process held (table_file.cc); repair recounts the others.
//  3. inserting != 0 only inside an insert's critical section (undo record).
//  4. copied_epoch == TableHeader::snapshot_epoch => the region's staging
//     copy is the region as of that epoch's start, complete; dirty == 0 =>
//     the region equals its staging copy. Both are stored only after the
//     copy's last counter (snapshot_staging.cc), so a copier that dies
//     midway leaves the region dirty and not copied for the epoch.
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
//  6. wal_lsn only grows, each durable write storing its LSN (taken from
//     TableHeader::wal_lsn while it holds the region) before it changes
//     anything: so every durable write of the region with a lower or equal
//     LSN is in the region, and none with a higher one (write_ahead_log.h).
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
  // Nonzero when the region may differ from its copy in the staging area:
  // the ChangeStamp (control.h) of the first change since the copy. Set by
  // writers under `lock`, cleared when the region is copied. A snapshot only
  // copies dirty regions; the others' staging copies are still exact.
  std::atomic<uint32_t> dirty;
  // Changed by every insert and delete (invariant 5). Written under `lock`;
  // read without it (acquire) by List's sorted key index.
  std::atomic<uint32_t> key_set_version;
  // The log sequence number of the last durable write applied to the
  // region (invariant 6). Under `lock`. Zero in a layout-3 map's padding.
  uint64_t wal_lsn;
  char pad[128 - sizeof(StripeLockShared) - 32];
};
static_assert(sizeof(RegionShared) == 128);

// Per-process stats (handlers, aggregator). Invariants:
//  1. `pid` is claimed by the process itself, by CAS from 0
//     (RegisterProcess), and freed only by the owner (RecoverDeadProcess
//     after reaping that pid; Open zeroes every slot).
//  2. The other fields are written only by the process that claimed the
//     slot, with relaxed atomics; anyone reads them.
//  3. heartbeat_ns is 0 until the process's serving loop first turns, then
//     the monotonic time (CounterTable::HeartbeatNow) of its latest
//     turn; the loop turns at least every HeartbeatInterval (config.h). Only
//     handlers write it; the supervisor reads it (child_liveness.cc).
//  4. The connection fields are the counts of a handler's ConnectionGates
//     (server/connection_gate.h), summed over its listeners
//     (server/handler_listeners.cc), since the handler started, stored
//     (relaxed, whole values: one writer at a time, a gate's thread under
//     HandlerListeners' mutex, through CounterTable::PublishConnections)
//     after each change. The three
//     totals only grow; connections_open is a gauge: handshaking plus handed
//     to gRPC and not yet closed, as of the gate's latest sweep (at most
//     ConnectionGate's open-sweep interval old). When the owner frees the
//     slot of a dead handler it first adds the three totals to
//     TableHeader::retired_connections (RetiredConnections).
// Process slots are reset at every Open: nothing in them outlives the
// daemon that wrote it. (So heartbeat_ns and the connection fields, added in
// bytes that were padding and that Open zeroes, need no layout version
// bump; no field moved.)
struct alignas(64) ProcessSlot {
  std::atomic<int32_t> pid;    // 0: free.
  std::atomic<uint32_t> role;  // ProcessRole
  // Were the call counts (now the stats area's, shared/stats_area.h, which
  // keeps them over a respawn); zeroed by Open, written by nobody, kept so
  // that no field moves.
  uint64_t unused[2];
  std::atomic<uint32_t> ready;             // 1 once the process serves.
  std::atomic<uint32_t> connections_open;  // invariant 4 (was padding)
  std::atomic<int64_t> heartbeat_ns;
  // Invariant 4, in what was the slot's spare room.
  std::atomic<uint64_t> connections_accepted;  // handed to gRPC
  std::atomic<uint64_t> connections_refused;   // over --max-connections
  std::atomic<uint64_t> handshake_timeouts;    // no HTTP/2 preface in time
};
static_assert(sizeof(ProcessSlot) == 64);
static_assert(offsetof(ProcessSlot, ready) == 24 && offsetof(ProcessSlot, heartbeat_ns) == 32,
              "a field's offset never moves");
static_assert(offsetof(ProcessSlot, connections_open) == 28 &&
              offsetof(ProcessSlot, connections_accepted) == 40 &&
              offsetof(ProcessSlot, handshake_timeouts) == 56);

// The connection totals of the handlers that died (ProcessSlot invariant
// 4), so that GetStats' totals survive a respawn. Invariants:
//  1. Written only by the owner: RecoverDeadProcess adds a reaped handler's
//     three totals and then frees its slot, between two increments of `seq`
//     (odd while it folds, as a Slot's seqlock); Open zeroes it all.
//  2. So a reader (CounterTable::ProcessStatsSnapshot) that loads seq
//     (acquire), these totals and every slot, and then the same even seq
//     again, counted each handler's totals exactly once: in its slot or here.
// In zero bytes of the header's page, zeroed at every Open like the process
// slots: no layout version bump.
struct RetiredConnections {
  std::atomic<uint32_t> seq;
  uint32_t pad;
  std::atomic<uint64_t> accepted;
  std::atomic<uint64_t> refused;
  std::atomic<uint64_t> handshake_timeouts;
};

// What a journal entry's undo does (JournalEntry::created).
enum JournalUndo : uint32_t {
  kUndoValue = 0,    // restore old_value
  kUndoCreate = 1,   // the write created the counter: make it a tombstone
  kUndoDelete = 2,   // the write deleted it: make it live again (with old_value)
};

struct JournalEntry {
  uint32_t region;
  uint32_t slot;  // index within the region
  int64_t old_value;
  uint32_t created;  // JournalUndo
  uint32_t pad;
};

// One remembered write of a session (SessionSlot). sequence == 0: none.
struct SessionEntry {
  uint64_t sequence;
  uint64_t fingerprint;  // of the request (server/write_session.cc)
  uint64_t values_at;    // its response's first value: a position in SessionSlot::values
  uint32_t count;        // response values, 1 to kSessionResponseValues
  uint32_t flag;         // Set: it had a previous value; CompareAndSet: it applied
};
static_assert(sizeof(SessionEntry) == 32);

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
//  4. `active` == 1 => `reserved` is the number of places the batch took in
//     TableHeader::reserved_total (its creates); written before `active`.
//  5. `active` == 1 and session != 0 => the write records its response in
//     session slot session - 1, entry session_entry, which held
//     session_old_entry, the slot's highest being session_old_highest;
//     all three are written before `session`, and `session` before the
//     entry or highest change. Cleared (0) with the journal's commit or
//     undo, which then restores the entry and highest too.
struct alignas(64) BatchJournal {
  std::atomic<int32_t> owner;
  std::atomic<uint32_t> active;
  uint32_t count;
  uint32_t reserved;
  // Invariant 5, in what was padding up to layout 3 (zero there: none).
  uint32_t session;
  uint32_t session_entry;
  uint64_t session_old_highest;
  SessionEntry session_old_entry;
  JournalEntry entries[kMaxBatchOps];
};
static_assert(offsetof(BatchJournal, entries) == 64, "the entries never move");

enum SessionState : uint32_t { kSessionFree = 0, kSessionLive = 1 };

// One exactly-once session (session_table.cc has how they work).
// Invariants:
//  1. Every field but `lock`, `state`, `dirty` and `last_write_unix_ns` is
//     read and written only by the holder of `lock` (or the owner, as for
//     Slot); those four are atomics, read without it.
//  2. `id` and a change of `state` from free to live are written only
//     with SessionDirectory::lock held too, so the directory's holder may
//     scan ids; a live session may be made free (forgotten) under `lock`
//     alone.
//  3. state == kLive => entries[q % kSessionWindow].sequence == q means
//     write q of the session was applied with that entry's response:
//     values[(values_at + i) % kSessionResponseValues] for i < count,
//     valid while values_end - values_at <= kSessionResponseValues; and
//     highest is the highest sequence applied. values_end only grows.
//  4. copied_epoch and dirty follow RegionShared's invariant 4, for the
//     slot's staging copy (snapshot_staging.cc).
struct alignas(64) SessionSlot {
  StripeLockShared lock;
  std::atomic<uint32_t> state;  // SessionState
  std::atomic<uint32_t> dirty;  // a ChangeStamp, as RegionShared::dirty
  uint32_t copied_epoch;
  uint32_t pad;
  uint8_t id[kSessionIdBytes];
  std::atomic<int64_t> last_write_unix_ns;  // wall clock: it outlives the boot
  uint64_t highest;
  uint64_t values_end;
  uint64_t pad2[4];
  SessionEntry entries[kSessionWindow];
  int64_t values[kSessionResponseValues];
};
static_assert(offsetof(SessionSlot, entries) == 128 && sizeof(SessionSlot) % 64 == 0);

// The first page of the sessions' section. Invariants:
//  1. `lock` is taken before any session slot's lock, never after one
//     (session_table.cc).
//  2. Bit i of `used` is set (fetch_or) before anybody takes slot i's lock
//     or makes it live, and cleared only by Open, for a free slot. So a
//     slot whose bit is clear is free, unlocked and equal to its (zero)
//     staging copy: every walk over the sessions (the snapshot's, the
//     directory's scan, repairs, the durability lag) visits only the set
//     bits, and pages of slots never used are never touched.
struct alignas(64) SessionDirectory {
  StripeLockShared lock;
  // Live session slots (a relaxed count; recounted by Open).
  std::atomic<uint32_t> live;
  alignas(64) std::atomic<uint64_t> used[kSessionSlots / 64];
};
static_assert(sizeof(SessionDirectory) <= kPage);

// The calls an attached process counts in its slot (AttachSlot::calls).
enum AttachOp : uint32_t {
  kAttachIncrement,
  kAttachIncrementBatch,
  kAttachGet,
  kAttachBatchGet,
  kAttachSet,
  kAttachCompareAndSet,
  kAttachDelete,
  kAttachOps
};
enum AttachState : uint32_t { kAttachFree = 0, kAttachClaimed = 1 };

// One attached process (client/local/, table_attach.cc). Invariants:
//  1. An attacher takes the OFD write lock on its slot's first byte of the
//     map file (AttachLockOffset) before it claims the slot (CAS of `state`
//     from kAttachFree to kAttachClaimed), and keeps it until after it has
//     freed the slot again (Detach). The kernel drops the lock when the
//     process dies, whatever its pid namespace. So a claimed slot whose
//     byte nobody locks is a dead attacher's, and only the owner (the
//     supervisor) then repairs what it held (RecoverDeadProcess of its
//     token) and frees it.
//  2. incarnation, pid, uid and attached_unix_ns are written by the claimer
//     after its CAS, before its first call; calls and failures are relaxed
//     adds by the claimer's threads; anyone reads them.
//  3. Open keeps the claimed slots whose byte is locked (live attachers of
//     an earlier incarnation: their next write is refused) and frees the
//     others (dead ones, whose stripes Open's repair has released).
struct alignas(64) AttachSlot {
  std::atomic<uint32_t> state;  // AttachState
  std::atomic<int32_t> pid;     // as the attacher sees itself, in its own pid namespace
  std::atomic<uint64_t> incarnation;
  std::atomic<int64_t> attached_unix_ns;
  std::atomic<uint32_t> uid;
  uint32_t pad;
  std::atomic<uint64_t> calls[kAttachOps];  // by AttachOp, whatever their outcome
  std::atomic<uint64_t> failures;           // calls that returned an error
};
static_assert(sizeof(AttachSlot) == 128);

// The calls of the attached processes whose slots were freed (a Detach, or
// the owner's recovery of a dead one), so that the local call totals
// (/metrics' countersd_local_calls_total: these plus the claimed slots')
// keep them. Invariants:
//  1. Only added to while the daemon runs, by whoever frees a claimed slot,
//     before it frees it: the detaching attacher (DetachSlot) or the owner
//     (RecoverAttachSlot). Each count moves on its own: the slot's is
//     exchanged to 0, then what it held is added here (fetch_add,
//     release). Several processes may add at once, so there is no seqlock
//     (whose writer must be one).
//  2. So a reader that loads these (acquire) before it loads the slots
//     never counts a call twice: one seen here had left its slot first. It
//     may miss a call between the two steps of a move (a few instructions;
//     for good if the process dies between them): a reader whose totals
//     must never go backwards keeps its own high-water mark.
//  3. A free slot's counts are 0, so a new claimer's are its own.
//  4. Open zeroes it, with retired_connections: the totals start with the
//     daemon. (Live attachers of an earlier incarnation keep theirs in
//     their slots, and move them here when they detach.)
// In zero bytes of the header's page, after retired_connections: no layout
// version bump.
struct RetiredAttachCalls {
  std::atomic<uint64_t> calls[kAttachOps];  // by AttachOp
  std::atomic<uint64_t> failures;
};

// The first page. Invariants:
//  1. The static fields (up to header_crc) are written once, by Create,
//     before the file is mapped by anyone else, and are covered by
//     header_crc; validation (table_file.cc) checks each against the
//     geometry its capacity implies.
//  2. The trust fields, clean_shutdown up to trust_crc (every field that
//     decides whether the start-up trusts the file), are written by the
//     owner only (Create, Open, MarkCleanShutdown), which rewrites
//     trust_crc (TrustCrc) after each change, before any other process
//     runs or after all have stopped. A mismatch is a hand-edited or
//     damaged header: validation refuses the file. They lie in the first
//     512-byte sector with the static fields, so a torn write back cannot
//     split them from their checksum. An owner killed between its stores to
//     them and the checksum's (a few instructions, at Open or at the
//     clean-shutdown mark) leaves a mismatch too: the next start keeps the
//     map aside and restores the snapshot rather than trust it unvouched.
//  3. file_dev and file_ino are the st_dev and st_ino of the file when its
//     owner last opened (or created) it. A file whose own differ is a copy
//     (or was moved to another file system): the boot id vouches for the
//     original's page cache, not for the copy, which may hold half a
//     batch, so it is not trusted by its boot id (TableInfo::copied).
//  4. reserved_total == the live counters + the places reserved by inserts
//     in flight (table_insert.cc); never more than `capacity`. Changed by
//     writers by CAS (reserve) and fetch_sub (release); may stay too high
//     (never too low) after a process dies in the store between reserving
//     and recording it; recounted by Open and kept by RecoverDeadProcess.
//  5. snapshot_epoch is bumped only by the snapshotter and reset by Open;
//     writers read it under their region locks.
//  6. snapshot follows the protocol of control.h.
//  7. retired_connections follows RetiredConnections' invariants (written
//     by the owner only).
//  8. attach_incarnation is 0 while no daemon admits attached writers, else
//     the random number of the daemon's incarnation. Written only by the
//     owner: set once Open's repair is done and the attach socket is up
//     (OpenForAttach), stored 0 before anything reads the file at the next
//     start and at shutdown (FenceAttachers). An attacher's write checks
//     it after taking its stripes (table_attach.cc).
//  9. retired_attach_calls follows RetiredAttachCalls' invariants (added
//     to by the detaching attachers and the owner).
// 10. wal_lsn: fetch_add by a durable write, with its regions held, after
//     it read the snapshot epoch (write_ahead_log.h); kept by Open; after
//     a restore, the highest LSN the log holds (table_selection.cc).
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
  // ---- trust fields (invariants 2 and 3) ----
  // 1 after a clean shutdown; cleared when a new owner opens the file.
  std::atomic<uint32_t> clean_shutdown;
  uint32_t pad1;
  char boot_id[40];    // boot id of the last owner, NUL-padded.
  uint64_t file_dev;   // st_dev of the file at the last owner's open
  uint64_t file_ino;   // st_ino of the file at the last owner's open
  uint32_t trust_crc;  // TrustCrc: crc32 of clean_shutdown..file_ino, seeded with header_crc
  uint32_t pad2;
  // ---- runtime fields ----
  // Live counters + places reserved by inserts in flight (invariant 4).
  // size() sums the regions' `live` instead.
  alignas(64) std::atomic<uint64_t> reserved_total;
  // Bumped by the snapshotter to start a snapshot; read by writers under
  // their region locks. Its own line: read on every write, written rarely.
  alignas(64) std::atomic<uint32_t> snapshot_epoch;
  // Invariant 8. On the epoch's line: read by every attached write, which
  // reads the epoch too; written rarely.
  std::atomic<uint64_t> attach_incarnation;
  // The last log sequence number given to a durable write (invariant 10).
  alignas(64) std::atomic<uint64_t> wal_lsn;
  alignas(64) SnapshotControl snapshot;  // see control.h
  // The dead handlers' connection totals (RetiredConnections' invariants).
  alignas(64) RetiredConnections retired_connections;
  // The freed attach slots' calls (RetiredAttachCalls' invariants).
  alignas(64) RetiredAttachCalls retired_attach_calls;
};
static_assert(sizeof(TableHeader) <= kPage);
static_assert(offsetof(TableHeader, pad2) <= 512, "trust fields in the first sector");

// The header's checksums (table_file.cc): header_crc over the static
// fields, trust_crc over the trust fields. Tests that forge a header use
// them too.
uint32_t HeaderCrc(const TableHeader& h);
uint32_t TrustCrc(const TableHeader& h);

}  // namespace countersd::layout

#endif  // COUNTERSD_SHARED_LAYOUT_H_
