// How local attach works
// ======================
//
// A process on the same host, or in a container that shares the data
// directory, maps the daemon's live table and increments it directly,
// under the same stripe locks as the handlers. An attached process is as
// trusted as a handler: it can write any counter, and it is whoever may
// open the map file read-write (the daemon's user, or its --attach-group).
//
//  1. Attach (client/local/ through CounterTable::Attach): get the grant
//     from the daemon's attach socket (attach_grant.h), open the map file
//     read-write, check it is the file the grant names, map it and the
//     staging memfd, and claim an attach slot (layout.h, AttachSlot): take
//     the OFD write lock on the slot's byte of the map file (ofd_lock.h),
//     then CAS its state from free to claimed. Stripes and journals it
//     takes record its token (-(slot + 1)), not its pid: pids repeat across
//     pid namespaces, attach slots do not.
//  2. Every write of an attached handle checks, after taking its stripes
//     and before reading or changing anything, that the header's
//     attach_incarnation is the one it was admitted under (Admitted; a
//     batch once it holds all of its stripes). Reads check before and
//     after. A mismatch is UNAVAILABLE: the daemon restarted, or set the
//     file aside; the handle never writes into a file that is no longer
//     the live table.
//  3. The fence (FenceAttachers, at every start before anything reads the
//     map file; CloseToAttachers at shutdown): store 0 to the incarnation,
//     then wait until no stripe is held by a live attacher. The attacher
//     stores its owner word then loads the incarnation, the fence stores
//     the incarnation then loads the owner words (Admitted says why that
//     suffices), so each attacher either sees the fence and backs off
//     without a change, or is seen and waited for. A dead attacher is
//     not waited for (its byte is unlocked): Open's repair treats what it
//     held like what a dead handler held. A live one stuck for 10s (stopped
//     inside a critical section) fails the start, naming it: repairing
//     under a writer that may resume would corrupt the table.
//  4. A writer refused by the fence may still hold a stripe for a moment,
//     and the new owner's Open re-initialises every lock and journal
//     meanwhile: it releases by CAS (UnlockRefused, the journal's CAS) and
//     has read and changed nothing, so nothing it does matters.
//  5. While the daemon runs, the supervisor finds dead attachers
//     (RecoverDeadAttachers): every 50ms those that hold a stripe (one
//     word per stripe, then one F_OFD_GETLK per attacher seen), every
//     second every claimed slot. A claimed slot whose byte nobody locks is
//     a dead attacher's (AttachSlot invariant 1): RecoverDeadProcess of its
//     token rolls back its half-done insert or batch and releases its
//     stripes, then the slot is freed.
//  6. Counts: an attacher counts its calls in its slot. Whoever frees a
//     claimed slot (Detach, or step 5's recovery) first moves its counts
//     into the header's retired totals (layout.h, RetiredAttachCalls), so
//     that the totals summed over the slots and those never lose a
//     detached attacher's calls.
//  7. A fork child inherits the open file description, and with it the
//     slot's lock: were the parent to die holding a stripe, the lock would
//     say it lives as long as the child does. So a fork child closes its
//     copy of every attached handle's map descriptor, and its handles
//     refuse every call (they are the parent's).
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "shared/log.h"
#include "shared/monotonic_time.h"
#include "shared/ofd_lock.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::AttachSlot;
using layout::RegionShared;
using layout::TableHeader;

namespace {

// How long a start or a shutdown waits for a live attacher to leave its
// critical section (tens of nanoseconds when it runs).
constexpr absl::Duration kFenceWaitLimit = absl::Seconds(10);

// The incarnation an attached handle of a fork child is given: no daemon
// ever has it (OpenForAttach never picks it), so its every call is refused.
constexpr uint64_t kForkedIncarnation = ~uint64_t{0};


off_t LockOffset(uint64_t attach_offset, uint32_t i) {
  return static_cast<off_t>(attach_offset + uint64_t{i} * sizeof(AttachSlot));
}

// A live attacher inside a critical section: its slot and a stripe it holds.
struct Holding {
  uint32_t slot;
  uint32_t stripe;
};

std::optional<Holding> LiveAttacherHolding(const RegionShared* regions, uint32_t n, int fd,
                                           uint64_t attach_offset) {
  for (uint32_t r = 0; r < n; ++r) {
    const int32_t owner = regions[r].lock.owner.load(std::memory_order_seq_cst);
    if (!layout::IsAttachToken(owner)) continue;
    const uint32_t slot = layout::AttachSlotOf(owner);
    if (ByteLockedByOther(fd, LockOffset(attach_offset, slot))) return Holding{slot, r};
  }
  return std::nullopt;
}

// Step 3: the incarnation is 0 already; waits for the live attachers that
// hold stripes.
absl::Status WaitForAttachersOutside(const std::string& path, const RegionShared* regions,
                                     uint32_t n, const AttachSlot* slots, int fd,
                                     uint64_t attach_offset) {
  const absl::Time start = MonotonicNow();
  absl::Time next_log = start + absl::Seconds(1);
  for (;;) {
    std::optional<Holding> h = LiveAttacherHolding(regions, n, fd, attach_offset);
    if (!h) return absl::OkStatus();
    const absl::Time now = MonotonicNow();
    const int32_t pid = slots[h->slot].pid.load(std::memory_order_relaxed);
    if (now - start >= kFenceWaitLimit) {
      return absl::FailedPreconditionError(absl::StrCat(
          "an attached process (attach slot ", h->slot, ", pid ", pid,
          " in its own pid namespace) is alive but has held stripe ", h->stripe, " of ", path,
          " for ", absl::FormatDuration(kFenceWaitLimit),
          ": it is stopped or stuck inside a critical section; end it and start again"));
    }
    if (now >= next_log) {
      Log(LogLevel::kWarning, "waiting for an attached process to leave its critical section",
          {{"attach_slot", h->slot}, {"pid", pid}, {"stripe", h->stripe}, {"path", path}});
      next_log = now + absl::Seconds(1);
    }
    // Another process's progress, which no futex announces: poll it.
    absl::SleepFor(absl::Milliseconds(1));
  }
}

// Step 6: moves the counts of slot `a`, about to be freed, to the retired
// totals, each count exchanged to 0 before it is added (RetiredAttachCalls
// invariant 1).
void RetireCalls(layout::RetiredAttachCalls& retired, AttachSlot* a) {
  for (uint32_t op = 0; op < layout::kAttachOps; ++op) {
    retired.calls[op].fetch_add(a->calls[op].exchange(0, std::memory_order_relaxed),
                                std::memory_order_release);
  }
  retired.failures.fetch_add(a->failures.exchange(0, std::memory_order_relaxed),
                             std::memory_order_release);
}

}  // namespace

// The attached handles of this process, for the fork child handler (step 7).
class CounterTable::AttachedHandles {
 public:
  static void Add(CounterTable* t) {
    static std::once_flag once;
    std::call_once(once, [] {
      pthread_atfork([] { mu_.lock(); }, [] { mu_.unlock(); }, OnForkChild);
    });
    std::lock_guard<std::mutex> lock(mu_);
    if (handles_ == nullptr) handles_ = new std::vector<CounterTable*>();
    handles_->push_back(t);
  }
  static void Remove(CounterTable* t) {
    std::lock_guard<std::mutex> lock(mu_);
    if (handles_ != nullptr) std::erase(*handles_, t);
  }

 private:
  static void OnForkChild() {
    // Only this thread exists now, and the prepare handler holds mu_.
    if (handles_ != nullptr) {
      for (CounterTable* t : *handles_) {
        if (t->map_fd_ >= 0) close(t->map_fd_);
        t->map_fd_ = -1;
        t->incarnation_ = kForkedIncarnation;
      }
    }
    mu_.unlock();
  }
  static inline std::mutex mu_;
  static inline std::vector<CounterTable*>* handles_ = nullptr;  // guarded by mu_
};

off_t CounterTable::AttachLockOffset(uint32_t i) const {
  return LockOffset(reinterpret_cast<const char*>(attach_base_) - base_, i);
}

uint32_t CounterTable::attach_slot() const { return layout::AttachSlotOf(attach_token_); }

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Attach(const std::string& map_path,
                                                                   AttachGrant grant) {
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd >= 0) close(fd);
    }
  } staging_closer{grant.staging_fd};
  Sys* sys = RealSys();
  absl::StatusOr<int> fd = OpenDataFile(sys, map_path, O_RDWR, 0);
  if (!fd.ok()) {
    if (absl::IsPermissionDenied(fd.status())) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot open ", map_path, " read-write (", fd.status().message(),
          "): attaching needs the daemon's user or a member of its --attach-group"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot open the live table ", map_path, ": ", fd.status().message()));
  }
  FdCloser map_closer{*fd};
  struct stat st;
  RETURN_IF_ERROR(sys->Fstat(*fd, &st, map_path));
  if (static_cast<uint64_t>(st.st_dev) != grant.map_dev ||
      static_cast<uint64_t>(st.st_ino) != grant.map_ino) {
    return absl::UnavailableError(absl::StrCat(
        map_path, " is not the file the daemon serves (it was replaced or set aside "
                  "meanwhile): attach again"));
  }
  absl::StatusOr<std::unique_ptr<CounterTable>> mapped = Map(map_path, *fd, true, sys);
  if (!mapped.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot attach to ", map_path, ": ", mapped.status().message()));
  }
  std::unique_ptr<CounterTable> t = *std::move(mapped);
  if (grant.staging_size != t->StagingBytes()) {
    return absl::UnavailableError(absl::StrCat("the daemon's staging area is ",
                                               grant.staging_size, " bytes, this table needs ",
                                               t->StagingBytes(), ": another countersd version?"));
  }
  ASSIGN_OR_RETURN(void* staging, sys->Mmap(grant.staging_size, PROT_READ | PROT_WRITE,
                                            MAP_SHARED, grant.staging_fd, "snapshot staging"));
  t->staging_ = static_cast<char*>(staging);
  t->staging_size_ = grant.staging_size;

  // Step 1: the slot's lock, then its state.
  const uint32_t start = static_cast<uint32_t>(getpid() ^ (absl::GetCurrentTimeNanos() >> 10));
  for (uint32_t k = 0; k < kAttachSlots && t->attach_token_ == 0; ++k) {
    const uint32_t i = (start + k) % kAttachSlots;
    AttachSlot* a = &t->attach_base_[i];
    if (a->state.load(std::memory_order_relaxed) != layout::kAttachFree) continue;
    ASSIGN_OR_RETURN(bool locked, TryLockByte(t->map_fd_, t->AttachLockOffset(i), "the map file"));
    if (!locked) continue;
    uint32_t expected = layout::kAttachFree;
    if (!a->state.compare_exchange_strong(expected, layout::kAttachClaimed)) {
      UnlockByte(t->map_fd_, t->AttachLockOffset(i));  // a dead one's, not yet recovered
      continue;
    }
    // The attach time last (release): a reader lists a claimed slot only
    // once it is nonzero (AttacherStatsSnapshot), whole.
    for (auto& c : a->calls) c.store(0, std::memory_order_relaxed);
    a->failures.store(0, std::memory_order_relaxed);
    a->pid.store(getpid(), std::memory_order_relaxed);
    a->uid.store(geteuid(), std::memory_order_relaxed);
    a->incarnation.store(grant.incarnation, std::memory_order_relaxed);
    a->attached_unix_ns.store(absl::GetCurrentTimeNanos(), std::memory_order_release);
    t->attach_token_ = layout::AttachToken(i);
  }
  if (t->attach_token_ == 0) {
    return absl::ResourceExhaustedError(absl::StrCat("all ", kAttachSlots, " attach slots of ",
                                                     map_path, " are taken"));
  }
  t->incarnation_ = grant.incarnation;
  AttachedHandles::Add(t.get());
  if (!t->Admitted()) {
    return absl::UnavailableError("the daemon is stopping or restarting: attach again");
  }
  return t;
}

void CounterTable::DetachSlot() {
  AttachedHandles::Remove(this);
  if (map_fd_ < 0) return;  // a fork child's copy (step 7): the slot is the parent's
  const uint32_t i = attach_slot();
  AttachSlot* a = &attach_base_[i];
  RetireCalls(header_->retired_attach_calls, a);  // step 6
  a->attached_unix_ns.store(0, std::memory_order_relaxed);
  a->pid.store(0, std::memory_order_relaxed);
  a->state.store(layout::kAttachFree, std::memory_order_release);
  UnlockByte(map_fd_, AttachLockOffset(i));  // after the slot is free (AttachSlot invariant 1)
}

void CounterTable::CountAttachedCall(uint32_t op, bool ok) {
  if (map_fd_ < 0) return;  // a fork child's copy: the slot is the parent's
  AttachSlot* a = &attach_base_[attach_slot()];
  a->calls[op].fetch_add(1, std::memory_order_relaxed);
  if (!ok) a->failures.fetch_add(1, std::memory_order_relaxed);
}

void CounterTable::UnlockRefused(uint32_t r) const {
  StripeLockShared* l = &region(r)->lock;
  int32_t mine = Holder();
  if (l->owner.compare_exchange_strong(mine, 0, std::memory_order_seq_cst)) {
    if (l->waiters.load(std::memory_order_seq_cst) > 0) StripeWakeup(l);
  }
}

AttachGrant CounterTable::OpenForAttach() {
  uint64_t incarnation = 0;
  while (incarnation == 0 || incarnation == kForkedIncarnation) {
    if (getrandom(&incarnation, sizeof incarnation, 0) != sizeof incarnation) {
      incarnation = static_cast<uint64_t>(absl::GetCurrentTimeNanos()) ^ getpid();
    }
  }
  header_->attach_incarnation.store(incarnation, std::memory_order_seq_cst);
  return AttachGrant{.incarnation = incarnation,
                     .map_dev = static_cast<uint64_t>(file_stat_.st_dev),
                     .map_ino = static_cast<uint64_t>(file_stat_.st_ino),
                     .staging_size = staging_size_,
                     .staging_fd = staging_fd_};
}

absl::Status CounterTable::CloseToAttachers() {
  header_->attach_incarnation.store(0, std::memory_order_seq_cst);
  return WaitForAttachersOutside(path_, regions_base_, header_->regions, attach_base_, map_fd_,
                                 AttachLockOffset(0));
}

absl::Status CounterTable::FenceAttachers(const std::string& map_path) {
  Sys* sys = RealSys();
  absl::StatusOr<int> fd = OpenDataFile(sys, map_path, O_RDWR, 0);
  if (absl::IsNotFound(fd.status())) return absl::OkStatus();
  // Whatever stops this open stops the start's own open too, saying so.
  if (!fd.ok()) return absl::OkStatus();
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{*fd};
  struct stat st;
  RETURN_IF_ERROR(sys->Fstat(*fd, &st, map_path));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // A daemon serves a map only once every block of it is allocated
  // (MapExisting), so a file with holes never had attachers; and reading
  // a hole on a full file system would be SIGBUS.
  if (size < layout::kPage || static_cast<uint64_t>(st.st_blocks) * 512 < size) {
    return absl::OkStatus();
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  if (p == MAP_FAILED) return ErrnoToStatus(errno, absl::StrCat("mmap(", map_path, ")"));
  struct Unmapper {
    void* p;
    uint64_t size;
    ~Unmapper() { munmap(p, size); }
  } unmapper{p, size};
  TableHeader* h = static_cast<TableHeader*>(p);
  // Layouts 3 and 4 admit attachers (their attach slots are at the same
  // place). A damaged header cannot say where the stripes are: the
  // incarnation (at its fixed place) is still closed.
  if (std::memcmp(h->magic, layout::kMagic, sizeof h->magic) != 0 ||
      (h->layout_version != layout::kLayoutVersion &&
       h->layout_version != layout::kLayoutVersionBeforeSessions)) {
    return absl::OkStatus();
  }
  h->attach_incarnation.store(0, std::memory_order_seq_cst);
  const uint64_t attach_offset =
      table_internal::AttachOffset(h->slots_offset, h->regions, h->region_slots);
  if (h->header_crc != layout::HeaderCrc(*h) || h->file_size != size ||
      h->regions_offset + uint64_t{h->regions} * sizeof(RegionShared) > size ||
      attach_offset + kAttachSlots * sizeof(AttachSlot) > size) {
    Log(LogLevel::kWarning,
        "the map file's header is damaged: attached processes are refused, but whether one is "
        "inside a critical section cannot be told",
        {{"path", map_path}});
    return absl::OkStatus();
  }
  const char* base = static_cast<const char*>(p);
  return WaitForAttachersOutside(
      map_path, reinterpret_cast<const RegionShared*>(base + h->regions_offset), h->regions,
      reinterpret_cast<const AttachSlot*>(base + attach_offset), *fd, attach_offset);
}

void CounterTable::FreeDeadAttachSlotsAtOpen() {
  for (uint32_t i = 0; i < kAttachSlots; ++i) {
    AttachSlot* a = &attach_base_[i];
    if (a->state.load() == layout::kAttachFree) continue;
    if (ByteLockedByOther(map_fd_, AttachLockOffset(i))) continue;  // AttachSlot invariant 3
    std::memset(static_cast<void*>(a), 0, sizeof *a);
  }
}

AttacherRecovery CounterTable::RecoverAttachSlot(uint32_t i) {
  AttachSlot* a = &attach_base_[i];
  AttacherRecovery out{.slot = i, .pid = a->pid.load(), .report = {}};
  out.report = RecoverDeadProcess(layout::AttachToken(i));
  RetireCalls(header_->retired_attach_calls, a);  // step 6
  a->attached_unix_ns.store(0);
  a->pid.store(0);
  a->incarnation.store(0);
  a->state.store(layout::kAttachFree, std::memory_order_release);
  out.report.stats_slot_freed = true;
  return out;
}

std::vector<AttacherRecovery> CounterTable::RecoverDeadAttachers(bool all_slots) {
  std::vector<uint32_t> suspects;
  if (all_slots) {
    for (uint32_t i = 0; i < kAttachSlots; ++i) {
      if (attach_base_[i].state.load(std::memory_order_relaxed) != layout::kAttachFree) {
        suspects.push_back(i);
      }
    }
  } else {
    for (uint32_t r = 0; r < header_->regions; ++r) {
      const int32_t owner = region(r)->lock.owner.load(std::memory_order_relaxed);
      if (layout::IsAttachToken(owner)) suspects.push_back(layout::AttachSlotOf(owner));
    }
    std::sort(suspects.begin(), suspects.end());
    suspects.erase(std::unique(suspects.begin(), suspects.end()), suspects.end());
  }
  std::vector<AttacherRecovery> out;
  for (uint32_t i : suspects) {
    // Only a claimed slot: a free one's token holds nothing (Detach
    // requires no call in flight), and a new attacher may claim it.
    if (attach_base_[i].state.load(std::memory_order_acquire) != layout::kAttachClaimed) continue;
    if (ByteLockedByOther(map_fd_, AttachLockOffset(i))) continue;  // alive
    out.push_back(RecoverAttachSlot(i));
  }
  return out;
}

bool CounterTable::AnyAttached() const {
  for (uint32_t i = 0; i < kAttachSlots; ++i) {
    if (attach_base_[i].state.load(std::memory_order_relaxed) != layout::kAttachFree) return true;
  }
  return false;
}

std::vector<AttacherStats> CounterTable::AttacherStatsSnapshot(AttachCallTotals* retired) const {
  if (retired != nullptr) {
    // Before the slots (RetiredAttachCalls invariant 2).
    const layout::RetiredAttachCalls& r = header_->retired_attach_calls;
    static_assert(sizeof retired->calls / sizeof retired->calls[0] == layout::kAttachOps);
    for (uint32_t op = 0; op < layout::kAttachOps; ++op) {
      retired->calls[op] = r.calls[op].load(std::memory_order_acquire);
    }
    retired->failures = r.failures.load(std::memory_order_acquire);
  }
  std::vector<AttacherStats> out;
  const uint64_t current = header_->attach_incarnation.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < kAttachSlots; ++i) {
    const AttachSlot& a = attach_base_[i];
    if (a.state.load(std::memory_order_acquire) != layout::kAttachClaimed) continue;
    if (a.attached_unix_ns.load(std::memory_order_acquire) == 0) continue;  // still attaching
    AttacherStats s{.slot = i,
                    .pid = a.pid.load(std::memory_order_relaxed),
                    .uid = a.uid.load(std::memory_order_relaxed),
                    .current = current != 0 &&
                               a.incarnation.load(std::memory_order_relaxed) == current,
                    .attached_unix_ns = a.attached_unix_ns.load(std::memory_order_relaxed),
                    .calls = {},
                    .failures = a.failures.load(std::memory_order_relaxed)};
    static_assert(sizeof s.calls / sizeof s.calls[0] == layout::kAttachOps);
    for (uint32_t op = 0; op < layout::kAttachOps; ++op) {
      s.calls[op] = a.calls[op].load(std::memory_order_relaxed);
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace countersd
