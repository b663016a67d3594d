// How the counter table works
// ===========================
//
// The file (layout.h) is a header page, one RegionShared per lock stripe,
// per-process stat slots, batch undo journals, and the slot array. The slot
// array is partitioned into `regions` equal ranges; a key's hash picks its
// region (high bits) and its first probe position inside it (low bits).
// Collisions probe linearly inside the region only. So:
//
//  1. Every slot is written only by the holder of its region's stripe lock.
//     No cross-stripe claim protocol is needed for inserts.
//  2. Increment of an existing key: lock, probe, checked add, one 8-byte
//     store, unlock. Nothing else is written, so a process killed at any
//     instruction leaves the slot either updated or not.
//  3. Insert: the region's `inserting` word records the slot before the slot
//     is touched; the slot's seq is odd while its key/state change (a
//     seqlock), so lock-free readers never use a half-written key. If the
//     writer dies, RecoverDeadProcess rolls the insert back (the caller never
//     got an OK) and repairs odd seqs.
//  4. Delete turns the slot into a tombstone. Inserts reuse the first
//     tombstone on their probe path; Open rebuilds regions that have any.
//  5. A batch claims an undo journal, takes its regions in ascending order,
//     plans every new value (checking overflow and capacity before touching
//     anything), then writes each change after appending its undo entry.
//     It commits with a single store (`active = 0`) before unlocking. A batch
//     whose writer dies uncommitted is undone entry by entry.
//  6. Get and List read without locks, using the seqlock of 3.
//  7. Snapshots are copy-on-write per region, by epoch. SnapshotForEach
//     bumps the table's snapshot epoch; from then on, whoever next holds a
//     region's lock copies the region's live counters into a shared staging
//     area before changing it (unless it was already copied for this epoch):
//     a writer, or the snapshotter itself, which walks the regions one by
//     one. A batch reads the epoch once while it holds all of its regions,
//     so the copy holds the whole batch or none of it. Increments on a
//     region stop only while that one region is copied, and regions that
//     did not change since their last copy are not copied again.
#include "shared/counter_table.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "shared/key.h"
#include "shared/layout.h"
#include "shared/status_macros.h"

namespace countersd {

using layout::BatchJournal;
using layout::JournalEntry;
using layout::ProcessSlot;
using layout::RegionShared;
using layout::Slot;
using layout::TableHeader;

namespace {

std::atomic<CounterTable::CriticalSectionHook> g_hook{nullptr};

void RunHook(std::string_view key) {
  if (auto hook = g_hook.load(std::memory_order_relaxed)) hook(key);
}

// getpid() is a system call in glibc >= 2.25; the lock path needs the pid on
// every call, so cache it and refresh it in fork children.
std::atomic<int32_t> g_pid{0};
void RefreshPid() { g_pid.store(::getpid(), std::memory_order_relaxed); }
int32_t Pid() {
  int32_t p = g_pid.load(std::memory_order_relaxed);
  if (p != 0) return p;
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, RefreshPid); });
  RefreshPid();
  return g_pid.load(std::memory_order_relaxed);
}

inline uint64_t Load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
inline uint64_t Load32(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// 64x64->128 multiply, folded: the mixing step of wyhash.
inline uint64_t Mum(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Stable 64-bit key hash (it is stored in the file), in the structure of
// wyhash: 16 bytes per multiply, whole-word (overlapping) loads for the
// tail, so a 20-byte key costs three multiplies and no byte loops.
uint64_t HashKey(std::string_view key) {
  constexpr uint64_t kP0 = 0xa0761d6478bd642fULL, kP1 = 0xe7037ed1a0b428dbULL;
  const char* p = key.data();
  const size_t len = key.size();
  uint64_t seed = kP0, a, b;
  if (len <= 16) {
    if (len >= 4) {
      const size_t mid = (len >> 3) << 2;
      a = (Load32(p) << 32) | Load32(p + mid);
      b = (Load32(p + len - 4) << 32) | Load32(p + len - 4 - mid);
    } else if (len > 0) {
      a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
          (uint64_t{static_cast<uint8_t>(p[len >> 1])} << 8) | static_cast<uint8_t>(p[len - 1]);
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    size_t i = len;
    while (i > 16) {
      seed = Mum(Load64(p) ^ kP1, Load64(p + 8) ^ seed);
      p += 16;
      i -= 16;
    }
    a = Load64(p + i - 16);
    b = Load64(p + i - 8);
  }
  return Mum(kP1 ^ len, Mum(a ^ kP1, b ^ seed));
}

// Key bytes equal? `n` = key.size() = the slot's key_len. Word compares
// with an overlapping last word; slot keys are kMaxKeyBytes long buffers.
inline bool KeyEquals(const char* slot_key, std::string_view key) {
  const size_t n = key.size();
  const char* q = key.data();
  if (n < 8) return std::memcmp(slot_key, q, n) == 0;
  for (size_t i = 0; i + 8 < n; i += 8) {
    if (Load64(slot_key + i) != Load64(q + i)) return false;
  }
  return Load64(slot_key + n - 8) == Load64(q + n - 8);
}

struct Geometry {
  uint32_t regions;
  uint32_t region_slots;
  uint64_t regions_offset;
  uint64_t processes_offset;
  uint64_t journals_offset;
  uint64_t slots_offset;
  uint64_t file_size;
};

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// Sizing. Regions hold ~1024 counters on average (fewer for small tables,
// but at least 8 regions for concurrency, at most 1024 stripes). A region
// has room for its average plus 15% plus 3 standard deviations of the
// binomial spread, so a region fills before the table only with
// probability ~1e-5 per region even at full capacity. That keeps the file
// at about 240 bytes per counter of capacity for 64Ki+ counters.
Geometry ComputeGeometry(uint64_t capacity) {
  Geometry g;
  uint64_t r = std::bit_floor(std::max<uint64_t>(capacity / 1024, 1));
  g.regions = static_cast<uint32_t>(std::clamp<uint64_t>(r, 8, 1024));
  uint64_t avg = (capacity + g.regions - 1) / g.regions;
  g.region_slots = static_cast<uint32_t>(
      avg + avg * 15 / 100 + static_cast<uint64_t>(3 * std::sqrt(static_cast<double>(avg))) + 8);
  g.regions_offset = layout::kPage;
  g.processes_offset =
      RoundUp(g.regions_offset + uint64_t{g.regions} * sizeof(RegionShared), layout::kPage);
  g.journals_offset =
      RoundUp(g.processes_offset + kProcessSlots * sizeof(ProcessSlot), layout::kPage);
  g.slots_offset =
      RoundUp(g.journals_offset + layout::kJournals * sizeof(BatchJournal), layout::kPage);
  g.file_size =
      RoundUp(g.slots_offset + uint64_t{g.regions} * g.region_slots * sizeof(Slot), layout::kPage);
  return g;
}

uint32_t HeaderCrc(const TableHeader* h) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(h), offsetof(TableHeader, header_crc)));
}

// Seqlock writer side: makes seq odd, runs `change`, makes it even again.
// Tolerates a seq left odd by a dead writer.
template <typename F>
void RewriteSlot(Slot* s, F change) {
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
  uint16_t key_len;
  char key[kMaxKeyBytes];
  std::string_view key_view() const { return {key, key_len}; }
};

// Seqlock reader. Returns false if the slot kept changing (a writer died
// mid-change and has not been repaired yet): the caller skips it.
bool ReadSlot(const Slot* s, SlotView* out) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint32_t s1 = s->seq.load(std::memory_order_acquire);
    if (s1 & 1) {
      if (attempt > 16) sched_yield();
      continue;
    }
    out->state = s->state;
    if (out->state == layout::kLive) {
      out->hash = s->hash;
      out->key_len = std::min<uint16_t>(s->key_len, kMaxKeyBytes);
      std::memcpy(out->key, s->key, out->key_len);
      out->value = s->value.load(std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) == s1) return true;
  }
  return false;
}

absl::Status Mismatch(std::string_view what, uint64_t found, uint64_t expected) {
  return absl::FailedPreconditionError(
      absl::StrCat("map file ", std::string(what), " is ", found, ", expected ", expected));
}

}  // namespace

inline RegionShared* CounterTable::region(uint32_t r) const { return regions_base_ + r; }
inline Slot* CounterTable::slots(uint32_t r) const {
  return slots_base_ + uint64_t{r} * region_slots_;
}
// The staging area (shared anonymous memory, not the file) holds, per
// region, the live counters of that region as of the last copy, packed.
struct StagedCounter {
  int64_t value;
  uint16_t key_len;
  char key[kMaxKeyBytes];
};
struct StagedRegion {
  uint32_t count;
  uint32_t pad;
  StagedCounter counters[1];  // region_slots of them
};
static size_t StagedRegionBytes(uint32_t region_slots) {
  return RoundUp(offsetof(StagedRegion, counters) + uint64_t{region_slots} * sizeof(StagedCounter),
                 64);
}
inline StagedRegion* CounterTable::staged(uint32_t r) const {
  return reinterpret_cast<StagedRegion*>(staging_ + r * StagedRegionBytes(region_slots_));
}
BatchJournal* CounterTable::journal(uint32_t j) const {
  return reinterpret_cast<BatchJournal*>(base_ + header_->journals_offset) + j;
}
ProcessSlot* CounterTable::process_slot(uint32_t i) const {
  return reinterpret_cast<ProcessSlot*>(base_ + header_->processes_offset) + i;
}

inline uint32_t CounterTable::RegionOf(uint64_t hash) const {
  // regions is a power of two; take the high bits.
  return region_shift_ == 64 ? 0 : static_cast<uint32_t>(hash >> region_shift_);
}

uint32_t CounterTable::StripeOf(std::string_view key) const { return RegionOf(HashKey(key)); }

static inline uint32_t FirstProbe(uint64_t hash, uint32_t n) {
  return static_cast<uint32_t>(((hash & 0xffffffffULL) * n) >> 32);
}

inline void CounterTable::LockRegion(uint32_t r) const { StripeLock(&region(r)->lock, Pid()); }
inline void CounterTable::UnlockRegion(uint32_t r) const { StripeUnlock(&region(r)->lock, Pid()); }

// REQUIRES: region r locked by this process; `epoch` read while holding it
// (for a batch: one read while holding every region of the batch).
inline void CounterTable::CopyRegionIfPending(uint32_t r, uint32_t epoch) const {
  RegionShared* reg = region(r);
  if (reg->copied_epoch == epoch || staging_ == nullptr) return;
  reg->copied_epoch = epoch;
  // An unchanged region's staging copy is still exact.
  if (reg->dirty.load(std::memory_order_relaxed) == 0) return;
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
      c.value = s.value.load(std::memory_order_relaxed);
      c.key_len = s.key_len;
      std::memcpy(c.key, s.key, s.key_len);
    }
  }
  st->count = n;
  reg->dirty.store(0, std::memory_order_relaxed);
}

// REQUIRES: region r locked by this process, about to be changed.
static inline void MarkDirty(RegionShared* reg) {
  if (reg->dirty.load(std::memory_order_relaxed) == 0)
    reg->dirty.store(1, std::memory_order_relaxed);
}

// RAII holder of one region's lock, for writers: copies the region into the
// snapshot staging area first if a snapshot is pending.
class CounterTable::StripeGuard {
 public:
  StripeGuard(const CounterTable* t, uint32_t r) : t_(t), r_(r) {
    t_->LockRegion(r_);
    t_->CopyRegionIfPending(r_, t_->header_->snapshot_epoch.load(std::memory_order_acquire));
    MarkDirty(t_->region(r_));
  }
  ~StripeGuard() { t_->UnlockRegion(r_); }
  StripeGuard(const StripeGuard&) = delete;
  StripeGuard& operator=(const StripeGuard&) = delete;

 private:
  const CounterTable* t_;
  uint32_t r_;
};

void CounterTable::SetCriticalSectionHookForTest(CriticalSectionHook hook) { g_hook.store(hook); }

// ---------------------------------------------------------------------------
// Creation, opening, validation.

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Map(const std::string& path, int fd,
                                                                bool writable, Sys* sys) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoToStatus(errno, absl::StrCat("fstat(", path, ")"));
  if (static_cast<uint64_t>(st.st_size) < sizeof(TableHeader)) {
    return absl::FailedPreconditionError(absl::StrCat("map file ", path, " is ", st.st_size,
                                                      " bytes, too short for a countersd header"));
  }
  int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  ASSIGN_OR_RETURN(void* p, sys->Mmap(st.st_size, prot, MAP_SHARED, fd, path));
  auto t = std::unique_ptr<CounterTable>(new CounterTable());
  t->sys_ = sys;
  t->path_ = path;
  t->writable_ = writable;
  t->base_ = static_cast<char*>(p);
  t->size_ = st.st_size;
  t->header_ = reinterpret_cast<TableHeader*>(p);
  RETURN_IF_ERROR(t->ValidateHeader(st.st_size));
  const TableHeader* h = t->header_;
  t->regions_base_ = reinterpret_cast<RegionShared*>(t->base_ + h->regions_offset);
  t->slots_base_ = reinterpret_cast<Slot*>(t->base_ + h->slots_offset);
  t->region_slots_ = h->region_slots;
  t->region_shift_ = 64 - static_cast<uint32_t>(std::countr_zero(h->regions));
  return t;
}

absl::Status CounterTable::ValidateHeader(uint64_t actual_file_size) const {
  const TableHeader* h = header_;
  if (std::memcmp(h->magic, layout::kMagic, sizeof h->magic) != 0) {
    return absl::FailedPreconditionError("not a countersd map file: bad magic");
  }
  if (h->layout_version != layout::kLayoutVersion) {
    return Mismatch("layout version", h->layout_version, layout::kLayoutVersion);
  }
  if (h->header_crc != HeaderCrc(h)) {
    return absl::FailedPreconditionError(
        "map file header checksum mismatch: the header is corrupt");
  }
  if (h->header_size != sizeof(TableHeader))
    return Mismatch("header size", h->header_size, sizeof(TableHeader));
  if (h->slot_size != sizeof(Slot)) return Mismatch("slot size", h->slot_size, sizeof(Slot));
  if (h->region_size != sizeof(RegionShared))
    return Mismatch("region size", h->region_size, sizeof(RegionShared));
  if (h->process_slot_size != sizeof(ProcessSlot))
    return Mismatch("process slot size", h->process_slot_size, sizeof(ProcessSlot));
  if (h->journal_size != sizeof(BatchJournal))
    return Mismatch("journal size", h->journal_size, sizeof(BatchJournal));
  Geometry g = ComputeGeometry(h->capacity);
  if (h->regions != g.regions) return Mismatch("region count", h->regions, g.regions);
  if (h->region_slots != g.region_slots)
    return Mismatch("slots per region", h->region_slots, g.region_slots);
  if (h->regions_offset != g.regions_offset || h->processes_offset != g.processes_offset ||
      h->journals_offset != g.journals_offset || h->slots_offset != g.slots_offset) {
    return absl::FailedPreconditionError("map file section offsets do not match its capacity");
  }
  if (h->file_size != g.file_size) return Mismatch("recorded size", h->file_size, g.file_size);
  if (actual_file_size != h->file_size) {
    return absl::FailedPreconditionError(absl::StrCat("map file is ", actual_file_size,
                                                      " bytes but its header says ", h->file_size,
                                                      " (truncated or extended)"));
  }
  return absl::OkStatus();
}

absl::Status CounterTable::InitStaging() {
  staging_size_ = uint64_t{header_->regions} * StagedRegionBytes(region_slots_);
  ASSIGN_OR_RETURN(void* p, sys_->Mmap(staging_size_, PROT_READ | PROT_WRITE,
                                       MAP_SHARED | MAP_ANONYMOUS, -1, "snapshot staging"));
  staging_ = static_cast<char*>(p);
  // The staging area starts empty: every region differs from it.
  header_->snapshot_epoch.store(0);
  for (uint32_t r = 0; r < header_->regions; ++r) {
    region(r)->dirty.store(1);
    region(r)->copied_epoch = 0;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Create(const std::string& path,
                                                                   uint64_t capacity, Sys* sys) {
  if (capacity == 0 || capacity > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("capacity must be between 1 and 1073741824 counters, got ", capacity));
  }
  ASSIGN_OR_RETURN(std::string boot_id, CurrentBootId());
  Geometry g = ComputeGeometry(capacity);
  ASSIGN_OR_RETURN(int fd, sys->Open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
  absl::Status st = sys->Ftruncate(fd, static_cast<off_t>(g.file_size), path);
  if (st.ok()) {
    // Write the header with pwrite so that Map() validates a complete one.
    TableHeader h{};
    std::memcpy(h.magic, layout::kMagic, sizeof h.magic);
    h.layout_version = layout::kLayoutVersion;
    h.header_size = sizeof(TableHeader);
    h.slot_size = sizeof(Slot);
    h.region_size = sizeof(RegionShared);
    h.process_slot_size = sizeof(ProcessSlot);
    h.journal_size = sizeof(BatchJournal);
    h.capacity = capacity;
    h.regions = g.regions;
    h.region_slots = g.region_slots;
    h.file_size = g.file_size;
    h.regions_offset = g.regions_offset;
    h.processes_offset = g.processes_offset;
    h.journals_offset = g.journals_offset;
    h.slots_offset = g.slots_offset;
    h.created_unix_ns = UnixNanos();
    h.header_crc = HeaderCrc(&h);
    if (pwrite(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
      st = ErrnoToStatus(errno, absl::StrCat("pwrite(", path, ")"));
    }
  }
  absl::StatusOr<std::unique_ptr<CounterTable>> t =
      st.ok() ? Map(path, fd, /*writable=*/true, sys)
              : absl::StatusOr<std::unique_ptr<CounterTable>>(st);
  if (t.ok()) st = sys->Fsync(fd, path);
  (void)sys->Close(fd);
  if (!t.ok() || !st.ok()) {
    ::unlink(path.c_str());  // our own half-made file, never a user's
    return t.ok() ? st : t.status();
  }
  CounterTable& table = **t;
  table.opened_info_ = table.Info();
  table.opened_info_.clean_shutdown = false;
  table.opened_info_.boot_id = boot_id;
  std::memset(table.header_->boot_id, 0, sizeof table.header_->boot_id);
  std::memcpy(table.header_->boot_id, boot_id.data(),
              std::min(boot_id.size(), sizeof table.header_->boot_id - 1));
  for (uint32_t r = 0; r < table.header_->regions; ++r) StripeLockInit(&table.region(r)->lock);
  table.header_->opened_unix_ns.store(UnixNanos());
  RETURN_IF_ERROR(table.InitStaging());
  Pid();
  return t;
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Open(const std::string& path, Sys* sys,
                                                                 OpenReport* report) {
  ASSIGN_OR_RETURN(std::string boot_id, CurrentBootId());
  ASSIGN_OR_RETURN(int fd, sys->Open(path, O_RDWR, 0));
  auto t = Map(path, fd, /*writable=*/true, sys);
  (void)sys->Close(fd);
  if (!t.ok()) return t.status();
  CounterTable& table = **t;
  TableHeader* h = table.header_;
  table.opened_info_ = table.Info();
  table.opened_info_.clean_shutdown = h->clean_shutdown.load() != 0;
  table.opened_info_.boot_id = std::string(h->boot_id, strnlen(h->boot_id, sizeof h->boot_id));

  // Every lock is meaningless now: whoever held it is gone.
  for (uint32_t r = 0; r < h->regions; ++r) StripeLockInit(&table.region(r)->lock);
  OpenReport rep = table.RepairAfterCrash();
  if (report) *report = rep;

  h->clean_shutdown.store(0);
  std::memset(h->boot_id, 0, sizeof h->boot_id);
  std::memcpy(h->boot_id, boot_id.data(), std::min(boot_id.size(), sizeof h->boot_id - 1));
  h->opened_unix_ns.store(UnixNanos());
  SnapshotControl& c = h->snapshot;
  c.request_seq.store(0);
  c.done_seq.store(0);
  c.last_failed.store(0);
  c.failures.store(0);
  RETURN_IF_ERROR(table.InitStaging());
  Pid();
  return t;
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::OpenReadOnly(const std::string& path) {
  Sys* sys = RealSys();
  ASSIGN_OR_RETURN(int fd, sys->Open(path, O_RDONLY, 0));
  auto t = Map(path, fd, /*writable=*/false, sys);
  (void)sys->Close(fd);
  if (!t.ok()) return t.status();
  CounterTable& table = **t;
  table.opened_info_ = table.Info();
  table.opened_info_.clean_shutdown = table.header_->clean_shutdown.load() != 0;
  table.opened_info_.boot_id = std::string(
      table.header_->boot_id, strnlen(table.header_->boot_id, sizeof table.header_->boot_id));
  return t;
}

CounterTable::~CounterTable() {
  if (staging_) (void)sys_->Munmap(staging_, staging_size_);
  if (base_) (void)sys_->Munmap(base_, size_);
}

TableInfo CounterTable::Info() const {
  TableInfo info = opened_info_;
  info.layout_version = header_->layout_version;
  info.capacity = header_->capacity;
  info.live = size();
  info.regions = header_->regions;
  info.region_slots = header_->region_slots;
  info.file_size = header_->file_size;
  info.created_unix_ns = header_->created_unix_ns;
  return info;
}

uint64_t CounterTable::capacity() const { return header_->capacity; }

uint64_t CounterTable::size() const {
  uint64_t n = 0;
  for (uint32_t r = 0; r < header_->regions; ++r) {
    n += region(r)->live.load(std::memory_order_relaxed);
  }
  return n;
}

bool CounterTable::WouldExceedCapacity(uint64_t creates) const {
  const uint64_t capacity = header_->capacity;
  // Far from the limit the hint decides; it is off by at most one per
  // process killed mid-insert, much less than the margin of one per region.
  if (header_->live_total.load(std::memory_order_relaxed) + creates + header_->regions <=
      capacity) {
    return false;
  }
  return size() + creates > capacity;
}

SnapshotControl& CounterTable::snapshot_control() { return header_->snapshot; }

// ---------------------------------------------------------------------------
// Crash repair.

// REQUIRES: region r is held by a dead process (or nobody runs, in Open).
// Rolls back a half-done insert, completes odd seqlocks, recounts.
static int RepairRegionSlots(RegionShared* reg, Slot* base, uint32_t n) {
  int rolled_back = 0;
  if (reg->inserting != 0) {
    Slot* s = &base[reg->inserting - 1];
    RewriteSlot(s, [&] { s->state = layout::kTombstone; });
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

void CounterTable::UndoJournal(BatchJournal* j) {
  for (uint32_t k = std::min<uint32_t>(j->count, kMaxBatchOps); k-- > 0;) {
    const JournalEntry& e = j->entries[k];
    if (e.region >= header_->regions || e.slot >= header_->region_slots) continue;
    Slot* s = &slots(e.region)[e.slot];
    if (e.created) {
      RewriteSlot(s, [&] { s->state = layout::kTombstone; });
    } else {
      s->value.store(e.old_value, std::memory_order_relaxed);
    }
  }
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
  header_->live_total.store(total);
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
    LiveSlot l;
    l.hash = s.hash;
    l.value = s.value.load();
    l.key_len = s.key_len;
    std::memcpy(l.key, s.key, s.key_len);
    live.push_back(l);
  }
  std::memset(static_cast<void*>(base), 0, uint64_t{n} * sizeof(Slot));
  for (const LiveSlot& l : live) {
    uint32_t i = FirstProbe(l.hash, n);
    while (base[i].state != layout::kEmpty) i = (i + 1 == n) ? 0 : i + 1;
    Slot& s = base[i];
    s.hash = l.hash;
    s.value.store(l.value);
    s.key_len = l.key_len;
    std::memcpy(s.key, l.key, l.key_len);
    s.state = layout::kLive;
  }
  region(r)->live.store(static_cast<uint32_t>(live.size()));
  region(r)->used = static_cast<uint32_t>(live.size());
}

RecoveryReport CounterTable::RecoverDeadProcess(pid_t pid) {
  RecoveryReport rep;
  // 1. Uncommitted batches of the dead process: undo them while it still
  //    holds their stripes, so nobody sees the half-applied state.
  for (uint32_t j = 0; j < layout::kJournals; ++j) {
    BatchJournal* bj = journal(j);
    if (bj->owner.load() != pid) continue;
    if (bj->active.load() != 0) {
      UndoJournal(bj);
      ++rep.batches_rolled_back;
    }
    bj->owner.store(0);
    ++rep.journals_freed;
  }
  // 2. Stripes it held: roll back a half insert, finish odd seqlocks,
  //    recount, release.
  int64_t live_delta = 0;
  for (uint32_t r = 0; r < header_->regions; ++r) {
    RegionShared* reg = region(r);
    if (reg->lock.owner.load() != pid) continue;
    // No staging copy here: a copy for the current epoch, if the dead
    // process made one, was made before it changed anything; otherwise the
    // snapshotter copies the region once it is repaired.
    MarkDirty(reg);
    const int64_t live_before = reg->live.load();
    rep.inserts_rolled_back += RepairRegionSlots(reg, slots(r), header_->region_slots);
    live_delta += static_cast<int64_t>(reg->live.load()) - live_before;
    if (StripeForceUnlock(&reg->lock, pid)) ++rep.stripes_released;
  }
  // 3. The table-wide hint follows the recounts. (Never take every lock
  //    here: another child may have died holding one, and only this process
  //    can release it.)
  if (live_delta != 0) header_->live_total.fetch_add(static_cast<uint64_t>(live_delta));
  // 4. Its stats slot.
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    ProcessSlot* ps = process_slot(i);
    int32_t expected = pid;
    if (ps->pid.load() == pid && ps->pid.compare_exchange_strong(expected, 0)) {
      rep.stats_slot_freed = true;
    }
  }
  return rep;
}

// ---------------------------------------------------------------------------
// Single-key operations.

inline Slot* CounterTable::Find(uint32_t r, std::string_view key, uint64_t hash) const {
  const uint32_t n = region_slots_;
  Slot* base = slots(r);
  uint32_t i = FirstProbe(hash, n);
  for (uint32_t probes = 0; probes < n; ++probes) {
    Slot* s = &base[i];
    if (s->state == layout::kEmpty) return nullptr;
    if (s->hash == hash && s->state == layout::kLive && s->key_len == key.size() &&
        KeyEquals(s->key, key)) {
      return s;
    }
    if (++i == n) i = 0;
  }
  return nullptr;
}

static absl::Status TableFull(uint64_t capacity) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "counter table is full (capacity ", capacity,
      " counters); delete counters, or restart with a larger --capacity on a new data directory"));
}

// REQUIRES: region r locked by this process, key absent.
absl::StatusOr<Slot*> CounterTable::Insert(uint32_t r, std::string_view key, uint64_t hash,
                                           int64_t value) {
  if (WouldExceedCapacity(1)) return TableFull(header_->capacity);
  const uint32_t n = header_->region_slots;
  Slot* base = slots(r);
  uint32_t i = FirstProbe(hash, n);
  uint32_t probes = 0;
  while (base[i].state == layout::kLive) {
    if (++probes == n) return TableFull(header_->capacity);
    if (++i == n) i = 0;
  }
  Slot* s = &base[i];
  RegionShared* reg = region(r);
  const bool was_empty = s->state == layout::kEmpty;
  reg->inserting = i + 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  RunHook(key);
  RewriteSlot(s, [&] {
    s->hash = hash;
    s->key_len = static_cast<uint16_t>(key.size());
    std::memcpy(s->key, key.data(), key.size());
    s->value.store(value, std::memory_order_relaxed);
    s->state = layout::kLive;
  });
  reg->live.store(reg->live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (was_empty) ++reg->used;
  header_->live_total.fetch_add(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  reg->inserting = 0;
  return s;
}

static absl::Status Overflow(std::string_view key, int64_t value, int64_t delta) {
  return absl::OutOfRangeError(absl::StrCat("adding ", delta, " to counter \"", std::string(key),
                                            "\" (", value,
                                            ") would overflow int64; the value is unchanged"));
}

static absl::Status NotFound(std::string_view key) {
  return absl::NotFoundError(absl::StrCat("counter \"", std::string(key), "\" does not exist"));
}

absl::StatusOr<int64_t> CounterTable::Increment(std::string_view key, int64_t delta) {
  // Only valid keys are ever stored (Slot invariant 2), so a key that is
  // found needs no validation: the hot path skips it.
  if (key.size() > kMaxKeyBytes) return ValidateKey(key);
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  if (Slot* s = Find(r, key, h)) {
    int64_t v = s->value.load(std::memory_order_relaxed);
    int64_t nv;
    if (__builtin_add_overflow(v, delta, &nv)) return Overflow(key, v, delta);
    RunHook(key);
    s->value.store(nv, std::memory_order_relaxed);
    return nv;
  }
  RETURN_IF_ERROR(ValidateKey(key));
  RETURN_IF_ERROR(Insert(r, key, h, delta).status());
  return delta;
}

absl::StatusOr<int64_t> CounterTable::Get(std::string_view key) const {
  if (key.size() > kMaxKeyBytes) return ValidateKey(key);
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  const uint32_t n = header_->region_slots;
  const Slot* base = slots(r);
  uint32_t i = FirstProbe(h, n);
  SlotView v;
  for (uint32_t probes = 0; probes < n; ++probes, i = (i + 1 == n) ? 0 : i + 1) {
    if (!ReadSlot(&base[i], &v)) continue;
    if (v.state == layout::kEmpty) break;
    if (v.state == layout::kLive && v.hash == h && v.key_view() == key) return v.value;
  }
  RETURN_IF_ERROR(ValidateKey(key));  // found keys are valid; a miss says why
  return NotFound(key);
}

absl::StatusOr<std::optional<int64_t>> CounterTable::Set(std::string_view key, int64_t value) {
  RETURN_IF_ERROR(ValidateKey(key));
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  if (Slot* s = Find(r, key, h)) {
    RunHook(key);
    return s->value.exchange(value, std::memory_order_relaxed);
  }
  RETURN_IF_ERROR(Insert(r, key, h, value).status());
  return std::nullopt;
}

absl::StatusOr<CounterTable::CasResult> CounterTable::CompareAndSet(std::string_view key,
                                                                    int64_t expected,
                                                                    int64_t value) {
  RETURN_IF_ERROR(ValidateKey(key));
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  Slot* s = Find(r, key, h);
  int64_t current = s ? s->value.load(std::memory_order_relaxed) : 0;
  if (current != expected) return CasResult{false, current};
  if (s) {
    s->value.store(value, std::memory_order_relaxed);
  } else {
    RETURN_IF_ERROR(Insert(r, key, h, value).status());
  }
  return CasResult{true, value};
}

absl::StatusOr<int64_t> CounterTable::Delete(std::string_view key) {
  RETURN_IF_ERROR(ValidateKey(key));
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  StripeGuard guard(this, r);
  Slot* s = Find(r, key, h);
  if (!s) return NotFound(key);
  int64_t prev = s->value.load(std::memory_order_relaxed);
  RunHook(key);
  RewriteSlot(s, [&] { s->state = layout::kTombstone; });
  RegionShared* reg = region(r);
  reg->live.store(reg->live.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  header_->live_total.fetch_sub(1, std::memory_order_relaxed);
  return prev;
}

// ---------------------------------------------------------------------------
// Batches.

BatchJournal* CounterTable::ClaimJournal() {
  const int32_t pid = Pid();
  // Start at a per-thread position so threads rarely collide.
  static thread_local uint32_t start = static_cast<uint32_t>(std::hash<const void*>{}(&start) >> 4);
  for (;;) {
    for (uint32_t k = 0; k < layout::kJournals; ++k) {
      BatchJournal* j = journal((start + k) % layout::kJournals);
      int32_t expected = 0;
      if (j->owner.load(std::memory_order_relaxed) == 0 &&
          j->owner.compare_exchange_strong(expected, pid, std::memory_order_acquire)) {
        return j;
      }
    }
    sched_yield();  // all journals busy: more concurrent batches than journals
  }
}

absl::StatusOr<std::vector<int64_t>> CounterTable::IncrementBatch(
    absl::Span<const KeyDelta> ops) {
  if (ops.empty()) return absl::InvalidArgumentError("batch is empty");
  if (ops.size() > kMaxBatchOps) {
    return absl::ResourceExhaustedError(
        absl::StrCat("batch has ", ops.size(), " increments; the limit is ", kMaxBatchOps));
  }
  // Per-thread scratch: no allocation per batch beyond the result.
  struct Item {
    uint64_t hash;
    uint32_t region;
    uint32_t index;  // into ops
  };
  struct Target {
    Slot* slot;  // nullptr: to be created
    uint32_t region;
    uint64_t hash;
    std::string_view key;
    int64_t value;
  };
  static thread_local std::vector<Item> items;
  static thread_local std::vector<uint32_t> regions;
  static thread_local std::vector<Target> targets;
  items.clear();
  regions.clear();
  targets.clear();
  for (size_t i = 0; i < ops.size(); ++i) {
    absl::Status st = ValidateKey(ops[i].key);
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("increment ", i, ": ", st.message()));
    }
    const uint64_t h = HashKey(ops[i].key);
    const uint32_t r = RegionOf(h);
    // The first probe is a likely cache miss (another process wrote it):
    // start loading it now, before the locks are taken.
    __builtin_prefetch(&slots(r)[FirstProbe(h, region_slots_)]);
    items.push_back({h, r, static_cast<uint32_t>(i)});
  }
  // Sorting by (region, hash, key, index) gives the lock order and puts the
  // increments of one key next to each other, in request order.
  std::sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
    if (a.region != b.region) return a.region < b.region;
    if (a.hash != b.hash) return a.hash < b.hash;
    if (int c = ops[a.index].key.compare(ops[b.index].key)) return c < 0;
    return a.index < b.index;
  });
  for (const Item& it : items) {
    if (regions.empty() || regions.back() != it.region) regions.push_back(it.region);
  }

  BatchJournal* j = ClaimJournal();
  for (uint32_t r : regions) LockRegion(r);  // ascending: the one global lock order
  // One epoch for every region of the batch: a snapshot holds all of it or
  // none of it (see CopyRegionIfPending).
  const uint32_t epoch = header_->snapshot_epoch.load(std::memory_order_acquire);
  for (uint32_t r : regions) {
    CopyRegionIfPending(r, epoch);
    MarkDirty(region(r));
  }
  auto release = [&] {
    for (auto it = regions.rbegin(); it != regions.rend(); ++it) UnlockRegion(*it);
    j->owner.store(0, std::memory_order_release);
  };

  // Plan: every new value, before anything changes.
  std::vector<int64_t> values(ops.size());
  uint64_t creates = 0;
  size_t overflow_at = ops.size();  // the first overflowing increment, in request order
  std::string overflow_message;
  for (size_t k = 0; k < items.size(); ++k) {
    const Item& it = items[k];
    const std::string_view key = ops[it.index].key;
    if (k == 0 || it.hash != items[k - 1].hash || key != ops[items[k - 1].index].key) {
      Slot* s = Find(it.region, key, it.hash);
      targets.push_back(
          {s, it.region, it.hash, key, s ? s->value.load(std::memory_order_relaxed) : 0});
      if (!s) ++creates;
    }
    Target& t = targets.back();
    const int64_t delta = ops[it.index].delta;
    int64_t nv;
    if (__builtin_add_overflow(t.value, delta, &nv)) {
      if (it.index < overflow_at) {
        overflow_at = it.index;
        overflow_message = std::string(Overflow(key, t.value, delta).message());
      }
      nv = t.value;  // keep planning to find the first failure in request order
    }
    t.value = nv;
    values[it.index] = nv;
  }
  if (overflow_at < ops.size()) {
    release();
    return absl::OutOfRangeError(absl::StrCat("increment ", overflow_at, ": ", overflow_message,
                                              "; no increment was applied"));
  }
  if (creates > 0 && WouldExceedCapacity(creates)) {
    release();
    return TableFull(header_->capacity);
  }

  // Apply, journaling each change before making it.
  j->count = 0;
  j->active.store(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  absl::Status failure;
  for (Target& t : targets) {
    Slot* base = slots(t.region);
    JournalEntry& e = j->entries[j->count];
    e.region = t.region;
    if (t.slot) {
      e.slot = static_cast<uint32_t>(t.slot - base);
      e.old_value = t.slot->value.load(std::memory_order_relaxed);
      e.created = 0;
      ++j->count;
      std::atomic_signal_fence(std::memory_order_seq_cst);
      RunHook(t.key);
      t.slot->value.store(t.value, std::memory_order_relaxed);
      continue;
    }
    const uint32_t n = header_->region_slots;
    uint32_t i = FirstProbe(t.hash, n), probes = 0;
    while (base[i].state == layout::kLive && probes++ < n) i = (i + 1 == n) ? 0 : i + 1;
    if (base[i].state == layout::kLive) {
      failure = TableFull(header_->capacity);
      break;
    }
    Slot* s = &base[i];
    const bool was_empty = s->state == layout::kEmpty;
    e.slot = i;
    e.old_value = 0;
    e.created = 1;
    ++j->count;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    RunHook(t.key);
    RewriteSlot(s, [&] {
      s->hash = t.hash;
      s->key_len = static_cast<uint16_t>(t.key.size());
      std::memcpy(s->key, t.key.data(), t.key.size());
      s->value.store(t.value, std::memory_order_relaxed);
      s->state = layout::kLive;
    });
    RegionShared* reg = region(t.region);
    reg->live.store(reg->live.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (was_empty) ++reg->used;
    header_->live_total.fetch_add(1, std::memory_order_relaxed);
  }
  if (!failure.ok()) {
    // Undo what was applied, and fix the counts the creates changed.
    for (uint32_t k = 0; k < j->count; ++k) {
      const JournalEntry& e = j->entries[k];
      if (e.created) {
        RegionShared* reg = region(e.region);
        reg->live.store(reg->live.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        header_->live_total.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    UndoJournal(j);
    release();
    return failure;
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  j->active.store(0, std::memory_order_release);  // commit point
  release();
  return values;
}

// ---------------------------------------------------------------------------
// Reading many.

std::vector<Counter> CounterTable::List(std::string_view prefix, std::string_view start_after,
                                        size_t limit) const {
  std::vector<Counter> out;
  if (limit == 0) return out;
  SlotView v;
  const uint64_t total = uint64_t{header_->regions} * header_->region_slots;
  const Slot* all = slots(0);
  // Keep the `limit` smallest keys above start_after in a max-heap.
  auto less = [](const Counter& a, const Counter& b) { return a.key < b.key; };
  for (uint64_t i = 0; i < total; ++i) {
    if (all[i].state != layout::kLive) continue;  // racy pre-check; ReadSlot confirms
    if (!ReadSlot(&all[i], &v) || v.state != layout::kLive) continue;
    std::string_view k = v.key_view();
    if (k.substr(0, prefix.size()) != prefix) continue;
    if (!start_after.empty() && k <= start_after) continue;
    if (out.size() == limit && k >= out.front().key) continue;
    out.push_back(Counter{std::string(k), v.value});
    std::push_heap(out.begin(), out.end(), less);
    if (out.size() > limit) {
      std::pop_heap(out.begin(), out.end(), less);
      out.pop_back();
    }
  }
  std::sort_heap(out.begin(), out.end(), less);
  return out;
}

void CounterTable::ForEach(
    const std::function<void(std::string_view key, int64_t value)>& fn) const {
  const uint64_t total = uint64_t{header_->regions} * header_->region_slots;
  const Slot* all = slots(0);
  SlotView v;
  for (uint64_t i = 0; i < total; ++i) {
    if (all[i].state != layout::kLive) continue;
    if (writable_) {
      if (!ReadSlot(&all[i], &v) || v.state != layout::kLive) continue;
      fn(v.key_view(), v.value);
    } else {
      // Offline file: no writer to wait for; read it as it is.
      const Slot& s = all[i];
      fn(std::string_view(s.key, std::min<uint16_t>(s.key_len, kMaxKeyBytes)),
         s.value.load(std::memory_order_relaxed));
    }
  }
}

uint64_t CounterTable::SnapshotForEach(
    const std::function<void(std::string_view key, int64_t value)>& fn) {
  const uint32_t regions = header_->regions;
  // Start epoch e: from now on whoever holds a region's lock copies it into
  // the staging area (if not yet copied for e) before changing it.
  const uint32_t epoch = header_->snapshot_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  uint64_t max_pause = 0;
  for (uint32_t r = 0; r < regions; ++r) {
    const int64_t t1 = absl::GetCurrentTimeNanos();
    LockRegion(r);
    CopyRegionIfPending(r, epoch);
    UnlockRegion(r);
    max_pause = std::max<uint64_t>(max_pause, absl::GetCurrentTimeNanos() - t1);
    const StagedRegion* st = staged(r);
    for (uint32_t i = 0; i < st->count; ++i) {
      const StagedCounter& c = st->counters[i];
      fn(std::string_view(c.key, c.key_len), c.value);
    }
  }
  return max_pause;
}

bool CounterTable::ChangedSinceLastSnapshot() const {
  for (uint32_t r = 0; r < header_->regions; ++r) {
    if (region(r)->dirty.load(std::memory_order_relaxed) != 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Process bookkeeping and shutdown.

absl::Status CounterTable::RegisterProcess(pid_t pid, ProcessRole role) {
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    ProcessSlot* ps = process_slot(i);
    int32_t expected = 0;
    if (ps->pid.load() == 0 && ps->pid.compare_exchange_strong(expected, pid)) {
      ps->role.store(static_cast<uint32_t>(role));
      ps->calls.store(0);
      ps->errors.store(0);
      ps->ready.store(0);
      ps->started_unix_ns.store(UnixNanos());
      my_slot_ = ps;
      return absl::OkStatus();
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("all ", kProcessSlots, " process slots of the map file are taken"));
}

void CounterTable::CountCall(bool error) {
  if (!my_slot_) return;
  my_slot_->calls.fetch_add(1, std::memory_order_relaxed);
  if (error) my_slot_->errors.fetch_add(1, std::memory_order_relaxed);
}

void CounterTable::SetReady(bool ready) {
  if (my_slot_) my_slot_->ready.store(ready ? 1 : 0);
}

std::vector<ProcessStats> CounterTable::ProcessStatsSnapshot() const {
  std::vector<ProcessStats> out;
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    const ProcessSlot* ps = process_slot(i);
    int32_t pid = ps->pid.load();
    if (pid == 0) continue;
    out.push_back(ProcessStats{pid, static_cast<ProcessRole>(ps->role.load()), ps->calls.load(),
                               ps->errors.load(), ps->ready.load() != 0});
  }
  return out;
}

absl::Status CounterTable::Sync() { return sys_->Msync(base_, size_, path_); }

absl::Status CounterTable::MarkCleanShutdown() {
  RETURN_IF_ERROR(Sync());
  header_->clean_shutdown.store(1);
  return sys_->Msync(base_, layout::kPage, path_);
}

}  // namespace countersd
