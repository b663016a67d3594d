// CounterTable: named signed 64-bit counters in a file mapped MAP_SHARED,
// shared by every process forked after the table was opened.
//
// Contract across processes:
//  - One owner process (the supervisor) calls Create or Open while holding an
//    exclusive flock on the data directory; it then forks the processes that
//    use the table. Every process that has the handle may call every
//    operation from any number of threads.
//  - After an operation returns OK its effect is in the shared mapping: it
//    survives the death of any process, including the owner, as long as the
//    host does not crash (the page cache keeps it).
//  - Mutations of one key are serialised by that key's stripe lock. A batch
//    takes its stripes in ascending order, so batches cannot deadlock.
//  - A process that dies while holding stripes leaves them locked until the
//    owner calls RecoverDeadProcess(pid) after reaping it. That call undoes
//    the dead process's half-done work (a half-inserted key, an uncommitted
//    batch) and releases the stripes. Completed single-key operations are
//    never undone; an uncommitted batch is rolled back entirely.
//  - Snapshot-related state (the staging area) is a MAP_SHARED|MAP_ANONYMOUS
//    mapping made by Create/Open: only processes forked afterwards share it.
//
// Errors: INVALID_ARGUMENT for a bad key (naming the rule), OUT_OF_RANGE for
// int64 overflow (the value is unchanged), NOT_FOUND for a missing counter,
// RESOURCE_EXHAUSTED for a full table or an oversized batch,
// FAILED_PRECONDITION for a file that fails validation (saying what
// mismatched), and syscall failures named by ErrnoToStatus.
#ifndef COUNTERSD_SHARED_COUNTER_TABLE_H_
#define COUNTERSD_SHARED_COUNTER_TABLE_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "shared/attach_grant.h"
#include "shared/control.h"
#include "shared/limits.h"
#include "shared/session_record.h"
#include "shared/table_reports.h"
#include "shared/sys.h"
#include "shared/write_ahead_log.h"

namespace countersd {

namespace layout {
struct TableHeader;
struct SessionSlot;
struct SessionDirectory;
struct RegionShared;
struct ProcessSlot;
struct AttachSlot;
struct BatchJournal;
struct Slot;
}  // namespace layout
struct StagedRegion;
class SortedKeyIndex;
// Frees a SortedKeyIndex (defined with it, so that this header needs only
// its declaration).
struct SortedKeyIndexDeleter {
  void operator()(SortedKeyIndex* index) const;
};

// A write's exactly-once session (WriteOptions, counters.proto;
// session_table.cc): which session, which of its writes, and the
// fingerprint of the request, so that a sequence reused for another
// request is told apart from a retry.
struct SessionWrite {
  std::string_view id;  // kSessionIdBytes
  uint64_t sequence;    // >= 1
  uint64_t fingerprint;
};

// How a write is made beyond the plain operation (WriteOptions): under a
// session (exactly-once, session_table.cc), durable (it takes a log
// sequence number for its record in the write-ahead log,
// write_ahead_log.h), or both.
struct WriteControl {
  WriteControl() = default;
  WriteControl(const SessionWrite& s) : session(s) {}  // NOLINT: a session alone
  std::optional<SessionWrite> session;
  bool durable = false;
};

// What a session remembers of a write that succeeded: its response.
//  - Increment, IncrementBatch: the values after each increment;
//  - Set: {previous value or 0}, flag = it had one;
//  - CompareAndSet: {the value stored now}, flag = it applied;
//  - Delete: {the previous value}.
struct WriteResponse {
  std::vector<int64_t> values;
  bool flag = false;
  // True when this is the response of an earlier application of the same
  // write (a retry): nothing was applied now.
  bool duplicate = false;
  // A durable write's log sequence number (0: none, a duplicate's too).
  uint64_t lsn = 0;
};

class CounterTable {
 public:
  // Creates a new table file at `path` (which must not exist) with mode
  // 0600, sized for `capacity` counters, and maps it. Records the current
  // boot id. INVALID_ARGUMENT if capacity is 0 or above kMaxCapacity.
  static absl::StatusOr<std::unique_ptr<CounterTable>> Create(const std::string& path,
                                                              uint64_t capacity,
                                                              Sys* sys = RealSys());

  // Opens an existing table as its new owner. Validates the header (magic,
  // layout version and byte order, struct sizes, file size, the checksums
  // of the static and of the trust fields) and the contents (every slot's
  // state; each live slot's key, hash, region and probe-chain placement;
  // no duplicate key; each region's counts), and refuses a mismatch with
  // FAILED_PRECONDITION naming it (table_file.cc). Then, single-threaded
  // and before any other process uses the file: rolls back batches and
  // inserts that a crashed process left half-done, recounts, reclaims
  // tombstones, re-initialises every lock and semaphore, frees every
  // process slot, clears the clean-shutdown flag and records the current
  // boot id and the file's identity. The TableInfo keeps the flag and boot
  // id as they were found.
  static absl::StatusOr<std::unique_ptr<CounterTable>> Open(const std::string& path,
                                                            Sys* sys = RealSys(),
                                                            OpenReport* report = nullptr);

  // Opens a table file read-only for inspection: validates the header and
  // the slots the same way, maps it PROT_READ and never writes. Only Info, Get, List and
  // ForEach may be used; the caller must not expect a consistent view if a
  // daemon is writing the file at the same time.
  static absl::StatusOr<std::unique_ptr<CounterTable>> OpenReadOnly(const std::string& path,
                                                                    Sys* sys = RealSys());

  ~CounterTable();
  CounterTable(const CounterTable&) = delete;
  CounterTable& operator=(const CounterTable&) = delete;

  TableInfo Info() const;
  uint64_t capacity() const;
  // Live counters now: the sum of every region's count (each exact under
  // its lock; the sum is exact when nothing runs).
  uint64_t size() const;

  // ---- Counter operations. Thread- and process-safe. ----

  // Adds delta, creating the counter at 0 first; returns the new value.
  absl::StatusOr<int64_t> Increment(std::string_view key, int64_t delta);
  absl::StatusOr<int64_t> Get(std::string_view key) const;
  // Sets the value, creating the counter; returns the previous value, or
  // nullopt if the counter did not exist.
  absl::StatusOr<std::optional<int64_t>> Set(std::string_view key, int64_t value);
  struct CasResult {
    bool applied;
    int64_t value;  // the value now stored (current value if not applied)
  };
  // A missing counter counts as 0; it is created only if the swap applies.
  absl::StatusOr<CasResult> CompareAndSet(std::string_view key, int64_t expected, int64_t value);
  // Deletes and returns the previous value. The slot becomes a tombstone that
  // new keys of the same region reuse; Open reclaims the rest.
  absl::StatusOr<int64_t> Delete(std::string_view key);

  // One increment of a batch.
  struct KeyDelta {
    std::string_view key;
    int64_t delta;
  };
  // Atomic batch: all increments apply or none. values[i] is the value after
  // ops[i]. A key may repeat. RESOURCE_EXHAUSTED if ops.size() > kMaxBatchOps.
  absl::StatusOr<std::vector<int64_t>> IncrementBatch(absl::Span<const KeyDelta> ops);

  // ---- Exactly-once writes (session_table.cc). ----
  // The same operations under a session: a write whose session and
  // sequence were applied already returns its first response (duplicate
  // set) and changes nothing; the write and its entry in the session
  // commit together, so a crash at any instruction leaves both or
  // neither. Errors besides the operation's own: FAILED_PRECONDITION
  // (session_refusal.h: an unknown session with a sequence over the
  // window, a sequence the window no longer holds; sessions off),
  // INVALID_ARGUMENT (the sequence was used for another request),
  // UNAVAILABLE for an attached handle (sessions are the daemon's).
  // A durable write is journaled like a batch and returns its LSN.
  absl::StatusOr<WriteResponse> IncrementBatch(absl::Span<const KeyDelta> ops,
                                               const WriteControl& control);
  absl::StatusOr<WriteResponse> Set(std::string_view key, int64_t value,
                                    const WriteControl& control);
  absl::StatusOr<WriteResponse> CompareAndSet(std::string_view key, int64_t expected,
                                              int64_t value, const WriteControl& control);
  absl::StatusOr<WriteResponse> Delete(std::string_view key, const WriteControl& control);

  // ---- The write-ahead log (write_ahead_log.h). ----
  // For a durable write's retry: the value now of each key (a Set, or a
  // Delete for a missing one), read with their regions held, under a new
  // LSN stored in those regions. The record to log so that the retry's
  // answer is durable whatever became of the first application's.
  absl::StatusOr<WalRecord> CurrentValuesForLog(absl::Span<const std::string_view> keys);
  // Owner, on a table nobody else uses yet (a restore): applies what of
  // `record` the snapshot `marks` describe does not hold (step 4 of
  // write_ahead_log.h), and the session entry it recorded. Records are
  // replayed in LSN order. FinishReplay then makes the table's LSNs follow
  // the log: `last_lsn`, the log's highest, in the header and every region.
  void ReplayWalRecord(const WalRecord& record, const WalMarks& marks);
  void FinishReplay(uint64_t last_lsn);
  // The last LSN given out (TableHeader::wal_lsn).
  uint64_t LastWalLsn() const;
  // The daemon's session limits (--sessions-max, at most kSessionSlots; 0:
  // sessions off; --session-ttl). Set by the owner before it forks; its
  // children inherit them.
  void ConfigureSessions(uint32_t max, absl::Duration ttl);
  // Sessions remembered now.
  uint32_t SessionsLive() const;
  // Owner, restoring a snapshot into a new table before anyone uses it:
  // puts a session back. FAILED_PRECONDITION when every place is taken.
  absl::Status RestoreSession(const SessionRecord& record);

  // The lock stripe that guards `key` (for benchmarks and tests that need
  // keys on the same or on different stripes).
  uint32_t StripeOf(std::string_view key) const;

  // Counters whose key starts with `prefix` and sorts after `start_after`
  // (bytewise; empty = from the start), sorted, at most `limit`, each key
  // once. A page is not a point-in-time view. What it holds:
  //  - every key it returns was live at some moment during the call, with
  //    the value returned, which the counter held at that moment;
  //  - every key in range that was live throughout the call is returned,
  //    unless `limit` keys before it were;
  //  - a key inserted or deleted during the call may or may not be returned.
  // So paging with start_after = the last key of the previous page is
  // stable: no key appears twice, and no key that exists throughout the
  // listing is skipped, whatever is inserted or deleted between pages.
  // Cost: in proportion to the page (limit x log(regions)) plus regions x
  // log(keys per region), plus a rescan of each region whose set of keys
  // changed since this process last listed (sorted_key_index.cc). Lock-free
  // towards writers; pages of one CounterTable handle run one at a time.
  std::vector<Counter> List(std::string_view prefix, std::string_view start_after,
                            size_t limit) const;
  // The sorted key index behind List (null before the first List), for its
  // tests and measurements (SortedKeyIndex::last_page_stats).
  const SortedKeyIndex* list_index_for_test() const { return list_index_.get(); }

  // Calls fn for every live counter, in slot order, reading without locks.
  // For offline inspection and tests; not point-in-time under writers.
  void ForEach(const std::function<void(std::string_view key, int64_t value)>& fn) const;

  // ---- Snapshots (one snapshotter at a time, e.g. the aggregator). ----

  // Takes a point-in-time copy of every counter and calls fn for each live
  // one. It starts a new snapshot epoch; each region is then copied by
  // whichever comes first: the snapshotter, or a writer about to change that
  // region. Increments on a region stop only while it is copied. No batch is
  // ever half in the copy. Returns the longest time the snapshotter held (or
  // waited for) one region's lock, in nanoseconds.
  // Then, with `session_fn`, every live session as of the same instant;
  // with `marks`, what the copy holds of the write-ahead log
  // (write_ahead_log.h, steps 4 and 5).
  uint64_t SnapshotForEach(
      const std::function<void(std::string_view key, int64_t value)>& fn,
      const std::function<void(const SessionRecord&)>& session_fn = nullptr,
      WalMarks* marks = nullptr);

  // False if no counter can have changed since the last SnapshotForEach
  // (a periodic snapshot may then be skipped). Cheap: one word per stripe.
  bool ChangedSinceLastSnapshot() const;
  // The ChangeStamp (control.h) of the oldest change not yet copied by a
  // snapshot, 0 if none: the oldest of the regions' dirty stamps.
  uint32_t OldestUncopiedChange() const;

  // Coordination words for snapshot requests (see control.h).
  SnapshotControl& snapshot_control();

  // ---- Process bookkeeping. ----

  // Claims a stats slot for `pid`. RESOURCE_EXHAUSTED when all are taken.
  absl::Status RegisterProcess(pid_t pid, ProcessRole role);
  void SetReady(bool ready);
  // Stores the calling process's connection counts (a handler's gate; a
  // no-op before RegisterProcess). Relaxed stores of whole values: REQUIRES
  // one writing thread per process.
  void PublishConnections(const ConnectionCounts& counts);
  // The stats of every claimed slot. With `retired`, also the connection
  // totals of the handlers reaped since Open (their `open` is 0), read
  // consistently with the slots: each handler's totals are in exactly one
  // of the two (layout.h, RetiredConnections).
  std::vector<ProcessStats> ProcessStatsSnapshot(ConnectionCounts* retired = nullptr) const;
  // Liveness (server/child_liveness.h). The clock of heartbeats:
  // CLOCK_MONOTONIC_COARSE in nanoseconds, one clock for every process of
  // the host, at the scheduler tick's resolution.
  static int64_t HeartbeatNow();
  // Records that the calling process's serving loop turned at `now`
  // (HeartbeatNow). One relaxed store on the process's own slot.
  void Heartbeat(int64_t now);
  // The latest heartbeat of `pid`; 0 if it never beat or has no slot.
  int64_t LastHeartbeat(pid_t pid) const;
  // The stripes whose owner word is `pid`, ascending. Reads only the owner
  // words, without locks: a snapshot that may be stale at once, unless
  // `pid` is stopped or dead.
  std::vector<uint32_t> StripesHeldBy(pid_t pid) const;

  // ---- Local attach (table_attach.cc). ----

  // Attaches this process to the live table of the daemon that sent
  // `grant` (attach_grant.h): opens `map_path` read-write, checks that it
  // is the file and the incarnation the grant names, maps it and the
  // staging area, and claims an attach slot (layout.h, AttachSlot). Takes
  // the grant's descriptor. PERMISSION_DENIED naming the file when it
  // cannot be opened read-write; UNAVAILABLE when it is not the live table
  // (any more); RESOURCE_EXHAUSTED when every attach slot is taken.
  static absl::StatusOr<std::unique_ptr<CounterTable>> Attach(const std::string& map_path,
                                                              AttachGrant grant);
  // An attached handle's slot, counted per call (layout::AttachOp).
  void CountAttachedCall(uint32_t op, bool ok);
  uint32_t attach_slot() const;

  // Owner: admits attached writers under a new random incarnation (after
  // Open, once the attach socket serves) and returns the grant to hand them.
  AttachGrant OpenForAttach();
  // Owner, at shutdown: refuses attached writers from now on and waits
  // until none is inside a critical section (as FenceAttachers).
  absl::Status CloseToAttachers();
  // At start, before anything reads the map file at `map_path` (REQUIRES
  // the data directory's lock): refuses the writes of every process
  // attached to it and waits until none is inside a critical section, so
  // that validation, repair or setting the file aside never run under a
  // writer. A live attacher stuck inside one for 10s fails the start
  // (FAILED_PRECONDITION naming it). Nothing to do for a missing file or
  // one of an older layout.
  static absl::Status FenceAttachers(const std::string& map_path);
  // Owner, periodically: repairs what dead attachers held (as
  // RecoverDeadProcess) and frees their slots. With `all_slots` false only
  // the attachers that hold a stripe are checked (cheap: one word per
  // stripe); with true, every claimed slot.
  std::vector<AttacherRecovery> RecoverDeadAttachers(bool all_slots);
  // Whether any attach slot is claimed.
  bool AnyAttached() const;
  // The claimed attach slots. With `retired`, also the calls of the slots
  // freed since Open, loaded first: a call is never in both, but one
  // being moved by a Detach at that moment may be in neither (layout.h,
  // RetiredAttachCalls), so a sum of the two may dip for an instant.
  std::vector<AttacherStats> AttacherStatsSnapshot(AttachCallTotals* retired = nullptr) const;

  // Owner only, after reaping `pid`: undoes its half-done insert or batch,
  // releases the stripes and journals it held and frees its stats slot,
  // after adding its connection totals to the retired ones.
  RecoveryReport RecoverDeadProcess(pid_t pid);

  // ---- Shutdown. ----

  // msync(MS_SYNC) of the whole mapping.
  absl::Status Sync();
  // Sets the clean-shutdown flag and syncs. REQUIRES: no other process uses
  // the table any more.
  absl::Status MarkCleanShutdown();

  // Test hook, called with the key while a stripe is held and the slot is
  // half written (after the undo record, before the change is complete).
  // Lets a test stop a process inside the critical section.
  using CriticalSectionHook = void (*)(std::string_view key);
  static void SetCriticalSectionHookForTest(CriticalSectionHook hook);
  // Test hook, called by whoever copies a region for a snapshot
  // (snapshot_staging.cc) after each counter it copied, with the region's
  // lock held. Lets a test kill a process in the middle of a copy.
  using SnapshotCopyHook = void (*)(uint32_t region, uint32_t counters_copied);
  static void SetSnapshotCopyHookForTest(SnapshotCopyHook hook);

 private:
  class StripeGuard;
  class AttachedHandles;
  CounterTable() = default;
  static absl::StatusOr<std::unique_ptr<CounterTable>> Map(const std::string& path, int fd,
                                                           bool writable, Sys* sys);
  // Opens an existing file, maps it and validates its header and slots.
  static absl::StatusOr<std::unique_ptr<CounterTable>> MapExisting(const std::string& path,
                                                                   bool writable, Sys* sys);
  absl::Status ValidateHeader(uint64_t actual_file_size) const;
  // The regions and slots: undo records, Slot invariants 2 and 6, no
  // duplicate key, the regions' counts (table_file.cc, step 2).
  absl::Status ValidateContents() const;
  absl::Status InitStaging();
  OpenReport RepairAfterCrash();
  void CompactRegion(uint32_t r);

  layout::RegionShared* region(uint32_t r) const;
  layout::Slot* slots(uint32_t r) const;
  StagedRegion* staged(uint32_t r) const;
  layout::SessionSlot* staged_session(uint32_t i) const;
  layout::BatchJournal* journal(uint32_t j) const;
  layout::ProcessSlot* process_slot(uint32_t i) const;
  // Attached writes: whether the daemon that admitted this handle still
  // does (TableHeader invariant 8). Always true for the owner's processes.
  bool Admitted() const;
  // Releases region r after a refused admission (it may have been reset by
  // a new owner's Open meanwhile).
  void UnlockRefused(uint32_t r) const;
  // Who this process is in owner words: its pid, or its attach token.
  int32_t Holder() const;
  // The byte of the map file whose OFD lock says attach slot i is alive.
  off_t AttachLockOffset(uint32_t i) const;
  // Repairs and frees attach slot i of a dead attacher. REQUIRES: owner.
  AttacherRecovery RecoverAttachSlot(uint32_t i);
  // Open's repair: frees the attach slots whose attacher is dead.
  void FreeDeadAttachSlotsAtOpen();
  // An attached handle's end: frees its slot, then its byte's lock.
  void DetachSlot();
  size_t StagingBytes() const;
  // Owner only (RecoverDeadProcess): moves the slot's connection totals to
  // the header's retired ones and frees the slot (CAS of `pid` to 0), under
  // the retired totals' seqlock. True if it freed the slot.
  bool RetireConnectionsAndFree(layout::ProcessSlot* ps, pid_t pid);
  uint32_t RegionOf(uint64_t hash) const;
  void LockRegion(uint32_t r) const;
  void UnlockRegion(uint32_t r) const;
  void CopyRegionIfPending(uint32_t r, uint32_t epoch) const;
  void CopyRegion(uint32_t r, uint32_t epoch) const;
  // Get without the admission checks.
  absl::StatusOr<int64_t> GetLockFree(std::string_view key) const;
  // REQUIRES: region r locked.
  layout::Slot* Find(uint32_t r, std::string_view key, uint64_t hash) const;
  // The one insert routine (table_insert.cc). REQUIRES: region r locked by
  // this process, `key` valid and absent, a place reserved
  // (ReserveCapacity) and the region not full (live < region_slots).
  // Records its undo in `batch` (a claimed, active journal) or, when null,
  // in the region. Returns the new key's slot.
  layout::Slot* InsertSlot(uint32_t r, std::string_view key, uint64_t hash, int64_t value,
                           layout::BatchJournal* batch);
  // A single-key insert: region check, reservation, InsertSlot;
  // RESOURCE_EXHAUSTED when the table or the region is full.
  absl::Status Insert(uint32_t r, std::string_view key, uint64_t hash, int64_t value);
  // Takes `creates` places of the capacity for inserts about to be made
  // (TableHeader::reserved_total, table_insert.cc); false, taking nothing,
  // if they would pass it. Thread- and process-safe.
  bool ReserveCapacity(uint64_t creates) const;
  // Gives back `n` places: a deleted counter's, or reservations undone.
  void ReleaseCapacity(uint64_t n) const;
  layout::BatchJournal* ClaimJournal();
  void UndoJournal(layout::BatchJournal* j);
  // IncrementBatch's body; with `session` (a slot this process holds), the
  // write's entry is recorded in it before the commit (session_table.cc).
  struct SessionHold {
    uint32_t slot;  // whose lock this process holds
    uint64_t sequence;
    uint64_t fingerprint;
  };
  // With `lsn` (a durable write), takes its LSN for its regions.
  absl::StatusOr<std::vector<int64_t>> ApplyBatch(absl::Span<const KeyDelta> ops,
                                                  SessionHold* session, uint64_t* lsn = nullptr);
  // REQUIRES: regions held, the epoch read. The next LSN, stored in each
  // region (RegionShared invariant 6).
  uint64_t TakeWalLsn(absl::Span<const uint32_t> regions) const;
  // Session slots (session_table.cc).
  layout::SessionSlot* session_slot(uint32_t i) const;
  // Calls fn for each slot whose bit in the directory's `used` is set
  // (layout.h, SessionDirectory invariant 2); nothing without sessions.
  void ForEachUsedSession(const std::function<void(uint32_t)>& fn) const;
  void MarkSessionUsed(uint32_t i) const;
  // Finds (or starts) the session of `w`, locks its slot and looks the
  // sequence up: a duplicate's response, or a hold for a new write.
  absl::StatusOr<SessionHold> BeginSessionWrite(const SessionWrite& w,
                                                std::optional<WriteResponse>* duplicate);
  void EndSessionWrite(const SessionHold& hold) const;
  absl::StatusOr<uint32_t> LockSession(const SessionWrite& w);
  // Under the slot's lock, with the epoch the write read: the slot's
  // staging copy, then its dirty mark.
  void PrepareSessionChange(uint32_t i, uint32_t epoch) const;
  void CopySessionIfPending(uint32_t i, uint32_t epoch) const;
  // REQUIRES: an active journal `j`, the session's slot held: saves the
  // undo (BatchJournal invariant 5), then records the response.
  void RecordSessionEntry(layout::BatchJournal* j, const SessionHold& hold,
                          absl::Span<const int64_t> values, bool flag) const;
  void UndoSessionEntry(layout::BatchJournal* j);
  // Set, CompareAndSet and Delete under a session or durable: one
  // journaled key write.
  enum class KeyWrite { kSet, kCompareAndSet, kDelete };
  absl::StatusOr<WriteResponse> JournaledKeyWrite(const WriteControl& control, KeyWrite op,
                                                  std::string_view key, int64_t expected,
                                                  int64_t value);
  // Replay's: a session's entry put back, unless its window holds it.
  void RestoreSessionEntry(const std::string& id, const SessionRecord::Entry& entry);
  void InitSessionCache();
  // Open's (and Create's) repair of the sessions: locks re-made, the live
  // count recounted.
  void RepairSessionsAtOpen();
  // RecoverDeadProcess's: the session locks `pid` held, released.
  int ReleaseSessionLocks(pid_t pid);

  Sys* sys_ = nullptr;
  std::string path_;
  bool writable_ = false;
  char* base_ = nullptr;
  size_t size_ = 0;
  char* staging_ = nullptr;  // shared anonymous: per region, its live counters packed
  size_t staging_size_ = 0;
  layout::TableHeader* header_ = nullptr;
  // Copies of the header's geometry, so the hot path does not re-read the
  // mapping (atomics there would force reloads).
  layout::RegionShared* regions_base_ = nullptr;
  layout::Slot* slots_base_ = nullptr;
  uint32_t region_slots_ = 0;
  uint32_t region_shift_ = 64;              // 64 - log2(regions); 64 means one region
  layout::ProcessSlot* my_slot_ = nullptr;  // this process's, after RegisterProcess
  layout::AttachSlot* attach_base_ = nullptr;
  // The sessions' section; null in an older layout read-only.
  layout::SessionDirectory* session_directory_ = nullptr;
  layout::SessionSlot* sessions_base_ = nullptr;
  uint32_t sessions_max_ = 0;  // ConfigureSessions
  int64_t session_ttl_ns_ = 0;
  // This process's session id -> slot index (checked under the slot's lock).
  struct SessionCache;
  struct SessionCacheDeleter {
    void operator()(SessionCache* cache) const;
  };
  std::unique_ptr<SessionCache, SessionCacheDeleter> session_cache_;
  // An attached handle: its slot's token (layout.h, AttachToken) and the
  // incarnation it was admitted under; 0 for the owner and its children.
  int32_t attach_token_ = 0;
  uint64_t incarnation_ = 0;
  // The map file, kept open by the owner (to test attach slots' locks) and
  // by an attached handle (whose OFD lock on its slot byte it holds).
  int map_fd_ = -1;
  int staging_fd_ = -1;  // the staging memfd
  struct stat file_stat_ = {};              // the file's, when mapped (its identity)
  TableInfo opened_info_;
  // List's per-process sorted key index, made by the first List.
  mutable std::once_flag list_index_once_;
  mutable std::unique_ptr<SortedKeyIndex, SortedKeyIndexDeleter> list_index_;
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_COUNTER_TABLE_H_
