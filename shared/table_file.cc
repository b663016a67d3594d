// How a table file is created, opened and validated
// ==================================================
//
// Create: compute the geometry for the capacity (regions, slots per region,
// section offsets; ComputeGeometry), create the file O_EXCL mode 0600,
// size it, pwrite a complete header with both checksums and this owner's
// trust fields (boot id, the file's st_dev and st_ino), map it, fsync it,
// then initialise the locks and the snapshot staging area. A half-made file
// of ours is unlinked on failure.
//
// Validation (every open, read-only or not, before anything is written or
// repaired), in order, each failure a FAILED_PRECONDITION naming what
// mismatched:
//  1. the header (ValidateHeader): magic; layout version (a byte-swapped one
//     means a map of the other byte order: the live map is host-native,
//     layout.h; an older one, a map of an older countersd, says so); the
//     header checksum over the static fields; the trust checksum over the
//     trust fields (TableHeader invariant 2: a hand-set clean-shutdown flag
//     or boot id is refused); the struct sizes of this build; the geometry
//     its capacity implies; the recorded and the actual file size;
//  2. the regions and slots (ValidateContents; not at Create, whose file is
//     blank), so that no reader, crash repair or compaction ever meets a
//     slot that breaks them:
//     a. every region's undo record (RegionShared::inserting) names a slot
//        of the region. The slots that crash repair will turn into
//        tombstones whatever they hold (named by an undo record, or by a
//        created entry of an active journal) are not judged further; every
//        other slot is, whatever its seq (an odd seq without an undo record
//        is a delete or a repair cut short, which keep the key whole);
//     b. each slot has a known state; each live one Slot invariant 2: a key
//        of 1 to kMaxKeyBytes bytes that follows the key rules, the stored
//        hash of that key, the region of that hash;
//     c. probe-chain placement (Slot invariant 6): a live key is reachable
//        from its home slot without crossing an empty slot. One walk per
//        region, starting after an empty slot, keeps the number of
//        non-empty slots since the last empty one, which bounds the
//        distance from any reachable key back to its home;
//     d. no key twice in a region (sorted by hash, equal neighbours
//        compared), so none twice in the table (a key's region is its
//        hash's);
//     e. the region's live and used counts equal its live and non-empty
//        slots (RegionShared invariant 2), unless a process died inside the
//        region's critical section (its stripe's owner word is set, or it
//        holds a half-done insert): Open's repair recounts those;
//     f. no more live counters than the capacity (TableHeader invariant 4).
//
// Trust (the start-up's choice, server/table_selection.cc) reads what
// validation vouches for: TableInfo::clean_shutdown, and the boot id, which
// is reported only when the file's st_dev and st_ino are those its owner
// recorded (TableHeader invariant 3): a copy is not the file whose page
// cache the boot id vouches for.
//
// Open (as the new owner, single-threaded, before any other process maps
// the file): validate, re-initialise every lock, run crash repair
// (crash_repair.cc), record this owner's trust fields (not clean, this
// boot id, this file's identity) under their checksum, reset the snapshot
// coordination words and make a new staging area. OpenReadOnly maps
// PROT_READ and validates only; a sparse file it reads into private memory
// instead (read_only_map.h), so that a hole never faults.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"
#include "shared/key_hash.h"
#include "shared/read_only_map.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::BatchJournal;
using layout::ProcessSlot;
using layout::RegionShared;
using layout::Slot;
using layout::TableHeader;
using layout::SessionSlot;
using table_internal::Pid;
using table_internal::ComputeGeometry;
using table_internal::Geometry;
using table_internal::RoundUp;

namespace {

// Sizing. Regions hold ~1024 counters on average (fewer for small tables,
// but at least 8 regions for concurrency, at most 1024 stripes). A region
// has room for its average plus 15% plus 3 standard deviations of the
// binomial spread, so a region fills before the table only with
// probability ~1e-5 per region even at full capacity. That keeps the file
// at about 240 bytes per counter of capacity for 64Ki+ counters.

// The trust fields of a new owner (TableHeader invariants 2 and 3): not a
// clean shutdown, this boot, this file; sealed with their checksum.
// REQUIRES: the owner, before any other process uses the file.
void RecordOwner(TableHeader* h, const std::string& boot_id, const struct stat& st) {
  h->clean_shutdown.store(0);
  std::memset(h->boot_id, 0, sizeof h->boot_id);
  std::memcpy(h->boot_id, boot_id.data(), std::min(boot_id.size(), sizeof h->boot_id - 1));
  h->file_dev = static_cast<uint64_t>(st.st_dev);
  h->file_ino = static_cast<uint64_t>(st.st_ino);
  h->trust_crc = layout::TrustCrc(*h);
}

// The directory that holds `path`.
std::string DirOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

absl::Status Mismatch(std::string_view what, uint64_t found, uint64_t expected) {
  return absl::FailedPreconditionError(
      absl::StrCat("map file ", Sv(what), " is ", found, ", expected ", expected));
}

}  // namespace

table_internal::Geometry table_internal::ComputeGeometry(uint64_t capacity) {
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
  g.attach_offset = table_internal::AttachOffset(g.slots_offset, g.regions, g.region_slots);
  g.sessions_offset = table_internal::SessionsOffset(g.attach_offset);
  g.file_size = RoundUp(g.sessions_offset + layout::kPage + kSessionSlots * sizeof(SessionSlot),
                        layout::kPage);
  return g;
}

uint64_t table_internal::LayoutEnd(const Geometry& g, uint32_t layout_version) {
  switch (layout_version) {
    case layout::kLayoutVersionBeforeAttach:
      return g.attach_offset;
    case layout::kLayoutVersionBeforeSessions:
      return g.sessions_offset;
    default:
      return g.file_size;
  }
}

uint32_t layout::HeaderCrc(const TableHeader& h) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(&h), offsetof(TableHeader, header_crc)));
}

uint32_t layout::TrustCrc(const TableHeader& h) {
  constexpr size_t kFrom = offsetof(TableHeader, clean_shutdown);
  constexpr size_t kTo = offsetof(TableHeader, trust_crc);
  return static_cast<uint32_t>(
      crc32(h.header_crc, reinterpret_cast<const Bytef*>(&h) + kFrom, kTo - kFrom));
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Map(const std::string& path, int fd,
                                                                bool writable, Sys* sys) {
  struct stat st;
  RETURN_IF_ERROR(sys->Fstat(fd, &st, path));
  if (static_cast<uint64_t>(st.st_size) < sizeof(TableHeader)) {
    return absl::FailedPreconditionError(absl::StrCat("map file ", path, " is ", st.st_size,
                                                      " bytes, too short for a countersd header"));
  }
  // Writable: the file's own pages (every block allocated by the caller).
  // Read-only: MapForReading, which never faults on a hole of a sparse map
  // left by an older version (SIGBUS on a full tmpfs; read_only_map.h).
  char* p;
  if (writable) {
    ASSIGN_OR_RETURN(void* shared,
                     sys->Mmap(st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, path));
    p = static_cast<char*>(shared);
  } else {
    ASSIGN_OR_RETURN(p, MapForReading(sys, fd, st, path));
  }
  auto t = std::unique_ptr<CounterTable>(new CounterTable());
  t->sys_ = sys;
  t->path_ = path;
  t->writable_ = writable;
  t->base_ = p;
  t->size_ = st.st_size;
  t->header_ = reinterpret_cast<TableHeader*>(p);
  RETURN_IF_ERROR(t->ValidateHeader(st.st_size));
  const TableHeader* h = t->header_;
  t->regions_base_ = reinterpret_cast<RegionShared*>(t->base_ + h->regions_offset);
  t->slots_base_ = reinterpret_cast<Slot*>(t->base_ + h->slots_offset);
  // A map of an older layout, read-only, has none of the later sections
  // (ValidateHeader).
  const uint64_t attach_offset =
      table_internal::AttachOffset(h->slots_offset, h->regions, h->region_slots);
  if (h->layout_version >= layout::kLayoutVersionBeforeSessions) {
    t->attach_base_ = reinterpret_cast<layout::AttachSlot*>(t->base_ + attach_offset);
  }
  if (h->layout_version >= layout::kLayoutVersion) {
    const uint64_t sessions_offset = table_internal::SessionsOffset(attach_offset);
    t->session_directory_ =
        reinterpret_cast<layout::SessionDirectory*>(t->base_ + sessions_offset);
    t->sessions_base_ =
        reinterpret_cast<layout::SessionSlot*>(t->base_ + sessions_offset + layout::kPage);
  }
  t->InitSessionCache();
  t->region_slots_ = h->region_slots;
  t->region_shift_ = 64 - static_cast<uint32_t>(std::countr_zero(h->regions));
  t->file_stat_ = st;
  // The owner tests attach slots' locks through it; an attacher holds its
  // slot's lock on it (table_attach.cc).
  if (writable) t->map_fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  // What the header says as found, before an owner changes it. A copy is
  // not vouched for by its boot id (TableHeader invariant 3).
  t->opened_info_ = t->Info();
  t->opened_info_.clean_shutdown = h->clean_shutdown.load() != 0;
  t->opened_info_.copied = h->file_dev != static_cast<uint64_t>(st.st_dev) ||
                           h->file_ino != static_cast<uint64_t>(st.st_ino);
  if (!t->opened_info_.copied) {
    t->opened_info_.boot_id = std::string(h->boot_id, strnlen(h->boot_id, sizeof h->boot_id));
  }
  return t;
}

absl::Status CounterTable::ValidateContents() const {
  const uint32_t n = region_slots_;
  // The slots crash repair turns into tombstones whatever they hold: those
  // of half-done inserts (a region's undo record, a created entry of an
  // active journal), as (region << 32 | slot), sorted.
  std::vector<uint64_t> doomed;
  for (uint32_t j = 0; j < layout::kJournals; ++j) {
    const BatchJournal* bj = journal(j);
    if (bj->active.load(std::memory_order_relaxed) == 0) continue;
    for (uint32_t k = 0; k < std::min<uint32_t>(bj->count, kMaxBatchOps); ++k) {
      const layout::JournalEntry& e = bj->entries[k];
      if (e.created && e.region < header_->regions && e.slot < n) {
        doomed.push_back(uint64_t{e.region} << 32 | e.slot);
      }
    }
  }
  for (uint32_t r = 0; r < header_->regions; ++r) {
    if (region(r)->inserting > n) {
      return absl::FailedPreconditionError(
          absl::StrCat("map file region ", r, " names insert slot ", region(r)->inserting - 1,
                       " of ", n, ": the file is corrupt"));
    }
    if (region(r)->inserting != 0) doomed.push_back(uint64_t{r} << 32 | (region(r)->inserting - 1));
  }
  std::sort(doomed.begin(), doomed.end());

  std::vector<std::pair<uint64_t, uint32_t>> keys;  // (hash, slot) of a region's live keys
  uint64_t table_live = 0;
  for (uint32_t r = 0; r < header_->regions; ++r) {
    const RegionShared* reg = region(r);
    const Slot* base = slots(r);
    auto bad = [&](uint32_t i, std::string_view why) {
      return absl::FailedPreconditionError(absl::StrCat("map file slot ", i, " of region ", r, " ",
                                                        Sv(why), ": the file is corrupt"));
    };
    auto is_doomed = [&](uint32_t i) {
      return std::binary_search(doomed.begin(), doomed.end(), uint64_t{r} << 32 | i);
    };
    // Walk the region once, starting after an empty slot, so that the
    // distance back to the last empty slot bounds every probe chain
    // (linear probing, wrapping; no empty slot: every chain is whole).
    uint32_t start = 0;
    while (start < n && base[start].state != layout::kEmpty) ++start;
    const bool has_empty = start < n;
    uint32_t run = 0;  // non-empty slots since the last empty one
    uint32_t live = 0, used = 0;
    bool cut_short = false;  // a half-done insert here: counts are mid-change
    keys.clear();
    for (uint32_t k = 0; k < n; ++k) {
      const uint32_t i = has_empty ? (start + 1 + k) % n : k;
      const Slot& s = base[i];
      if (is_doomed(i)) {  // a tombstone once repaired
        cut_short = true;
        ++used;
        ++run;
        continue;
      }
      if (s.state == layout::kEmpty) {
        run = 0;
        continue;
      }
      if (s.state == layout::kTombstone) {
        ++used;
        ++run;
        continue;
      }
      if (s.state != layout::kLive) return bad(i, absl::StrCat("has unknown state ", s.state));
      if (s.key_len == 0 || s.key_len > kMaxKeyBytes) {
        return bad(i, absl::StrCat("has key length ", s.key_len, " (1 to ", kMaxKeyBytes, ")"));
      }
      const std::string_view key = s.stored_key();
      if (absl::Status st = ValidateKey(key); !st.ok()) {
        return bad(i, absl::StrCat("holds an invalid key (", st.message(), ")"));
      }
      if (s.hash != HashKey(key)) return bad(i, "holds a hash that does not match its key");
      if (RegionOf(s.hash) != r) return bad(i, "holds a key of another region");
      const uint32_t home = table_internal::FirstProbe(s.hash, n);
      if (has_empty && (i + n - home) % n > run) {
        return bad(i, absl::StrCat("cannot be reached from its home slot ", home,
                                   ": an empty slot cuts its probe chain"));
      }
      keys.emplace_back(s.hash, i);
      ++live;
      ++used;
      ++run;
    }
    std::sort(keys.begin(), keys.end());
    for (size_t k = 1; k < keys.size(); ++k) {
      const Slot& a = base[keys[k - 1].second];
      const Slot& b = base[keys[k].second];
      if (keys[k - 1].first == keys[k].first && a.stored_key() == b.stored_key()) {
        return bad(keys[k].second, absl::StrCat("holds the same key as slot ", keys[k - 1].second,
                                                " (a duplicate)"));
      }
    }
    // The counts, unless a process died inside the region's critical
    // section (its stripe still names it): repair recounts those.
    if (!cut_short && reg->lock.owner.load(std::memory_order_relaxed) == 0 &&
        (reg->live.load(std::memory_order_relaxed) != live || reg->used != used)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "map file region ", r, " records ", reg->live.load(std::memory_order_relaxed),
          " live and ", reg->used, " used slots, but its slots hold ", live, " and ", used,
          ": the file is corrupt"));
    }
    table_live += live;
  }
  if (table_live > header_->capacity) {
    return absl::FailedPreconditionError(absl::StrCat("map file holds ", table_live,
                                                      " live counters, more than its capacity ",
                                                      header_->capacity, ": the file is corrupt"));
  }
  return absl::OkStatus();
}

absl::Status CounterTable::ValidateHeader(uint64_t actual_file_size) const {
  const TableHeader* h = header_;
  if (std::memcmp(h->magic, layout::kMagic, sizeof h->magic) != 0) {
    return absl::FailedPreconditionError("not a countersd map file: bad magic");
  }
  // A map of a layout this one upgrades reads as this one cut short (no
  // attach slots, or no sessions): read-only, for the start's trust
  // decision; the writable open upgrades it first (table_upgrade.cc).
  const bool older = !writable_ && (h->layout_version == layout::kLayoutVersionBeforeAttach ||
                                    h->layout_version == layout::kLayoutVersionBeforeSessions);
  if (h->layout_version != layout::kLayoutVersion && !older) {
    if (h->layout_version == __builtin_bswap32(layout::kLayoutVersion)) {
      return absl::FailedPreconditionError(
          "map file was written by a host of the other byte order; the live map is host-native "
          "and never moves between hosts: restore counters.snap (portable) instead");
    }
    if (h->layout_version < layout::kLayoutVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "map file has layout version ", h->layout_version, ", made by an older countersd; this ",
          "one reads version ", layout::kLayoutVersion,
          " only: restore counters.snap (every version reads it) instead"));
    }
    return Mismatch("layout version", h->layout_version, layout::kLayoutVersion);
  }
  if (h->header_crc != layout::HeaderCrc(*h)) {
    return absl::FailedPreconditionError(
        "map file header checksum mismatch: the header is corrupt");
  }
  if (h->trust_crc != layout::TrustCrc(*h)) {
    return absl::FailedPreconditionError(
        "map file trust fields (clean-shutdown flag, boot id, file identity) do not match their "
        "checksum: the header was edited or is corrupt, and cannot say whether to trust the file");
  }
  // Struct sizes differ between ABIs (another architecture's atomics or
  // sem_t): such a map is refused here, as a host-native file should be.
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
  const uint64_t expected_size = table_internal::LayoutEnd(g, h->layout_version);
  if (h->file_size != expected_size) return Mismatch("recorded size", h->file_size, expected_size);
  if (actual_file_size != h->file_size) {
    return absl::FailedPreconditionError(absl::StrCat("map file is ", actual_file_size,
                                                      " bytes but its header says ", h->file_size,
                                                      " (truncated or extended)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Create(const std::string& path,
                                                                   uint64_t capacity, Sys* sys) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("capacity must be between 1 and ", kMaxCapacity, " counters, got ", capacity));
  }
  ASSIGN_OR_RETURN(std::string boot_id, sys->BootId());
  Geometry g = ComputeGeometry(capacity);
  ASSIGN_OR_RETURN(int fd, OpenDataFile(sys, path, O_RDWR | O_CREAT | O_EXCL, 0600));
  struct stat file_stat;
  absl::Status st = sys->Fstat(fd, &file_stat, path);
  if (st.ok()) st = sys->Ftruncate(fd, static_cast<off_t>(g.file_size), path);
  // Every block allocated before the table is promised: a store into a hole
  // on a full disk would be SIGBUS; here it is RESOURCE_EXHAUSTED.
  if (st.ok()) st = sys->Fallocate(fd, 0, static_cast<off_t>(g.file_size), path);
  if (absl::IsResourceExhausted(st)) {
    st = absl::ResourceExhaustedError(absl::StrCat(st.message(), ": a table of capacity ",
                                                   capacity, " needs ", g.file_size,
                                                   " bytes; free space or choose a smaller "
                                                   "capacity"));
  }
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
    h.header_crc = layout::HeaderCrc(h);
    RecordOwner(&h, boot_id, file_stat);
    st = sys->Pwrite(fd, &h, sizeof h, 0, path);
  }
  absl::StatusOr<std::unique_ptr<CounterTable>> t =
      st.ok() ? Map(path, fd, /*writable=*/true, sys)
              : absl::StatusOr<std::unique_ptr<CounterTable>>(st);
  if (t.ok()) st = sys->Fsync(fd, path);
  if (t.ok() && st.ok()) st = sys->FsyncDir(DirOf(path));  // the new name, durable
  (void)sys->Close(fd);
  if (!t.ok() || !st.ok()) {
    (void)sys->Unlink(path);  // our own half-made file, never a user's
    return t.ok() ? st : t.status();
  }
  CounterTable& table = **t;
  for (uint32_t r = 0; r < table.header_->regions; ++r) StripeLockInit(&table.region(r)->lock);
  table.RepairSessionsAtOpen();
  RETURN_IF_ERROR(table.InitStaging());
  Pid();
  return t;
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Open(const std::string& path, Sys* sys,
                                                                 OpenReport* report) {
  ASSIGN_OR_RETURN(std::string boot_id, sys->BootId());
  ASSIGN_OR_RETURN(auto t, MapExisting(path, /*writable=*/true, sys));
  CounterTable& table = *t;
  TableHeader* h = table.header_;

  // The new owner's trust fields reach the disk before any slot changes
  // (the repair below moves keys): a header on disk that still said "clean
  // shutdown" would vouch, after a power loss, for slot pages written back
  // in any order since (found by tests/recovery/power_loss_test.cc).
  RecordOwner(h, boot_id, table.file_stat_);
  RETURN_IF_ERROR(sys->Msync(h, layout::kPage, path));

  // Every lock is meaningless now: whoever held it is gone.
  for (uint32_t r = 0; r < h->regions; ++r) StripeLockInit(&table.region(r)->lock);
  OpenReport rep = table.RepairAfterCrash();
  if (report) *report = rep;

  ResetAtOpen(h->snapshot);
  RETURN_IF_ERROR(table.InitStaging());
  Pid();
  return t;
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::OpenReadOnly(const std::string& path,
                                                                         Sys* sys) {
  return MapExisting(path, /*writable=*/false, sys);
}

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::MapExisting(const std::string& path,
                                                                        bool writable, Sys* sys) {
  ASSIGN_OR_RETURN(int fd, OpenDataFile(sys, path, writable ? O_RDWR : O_RDONLY, 0));
  // A map to be written has every block allocated (an older version left
  // holes) before Map reads a byte through its shared mapping (the header,
  // the regions' counts): on a full tmpfs even a read of a hole is SIGBUS,
  // so this is RESOURCE_EXHAUSTED instead, and no store into the file, the
  // repair's included, can take SIGBUS later. Allocating changes no byte.
  absl::Status allocated = absl::OkStatus();
  if (writable) {
    struct stat st;
    allocated = sys->Fstat(fd, &st, path);
    if (allocated.ok() && st.st_size > 0) allocated = sys->Fallocate(fd, 0, st.st_size, path);
    if (absl::IsResourceExhausted(allocated)) {
      allocated = absl::ResourceExhaustedError(absl::StrCat(
          allocated.message(), ": the map file's ", st.st_size, " bytes are not all allocated (",
          uint64_t(st.st_blocks) * 512, " are; an older countersd left holes), and a map is served "
          "only fully allocated; free space on its file system"));
    }
  }
  if (allocated.ok() && writable) allocated = table_internal::UpgradeInPlace(sys, path, fd);
  absl::StatusOr<std::unique_ptr<CounterTable>> t =
      allocated.ok() ? Map(path, fd, writable, sys)
                     : absl::StatusOr<std::unique_ptr<CounterTable>>(allocated);
  (void)sys->Close(fd);
  if (!t.ok()) return t.status();
  RETURN_IF_ERROR((*t)->ValidateContents());
  return t;
}

CounterTable::~CounterTable() {
  if (attach_token_ != 0) DetachSlot();
  if (map_fd_ >= 0) close(map_fd_);
  if (staging_fd_ >= 0) close(staging_fd_);
  if (staging_) (void)sys_->Munmap(staging_, staging_size_);
  if (base_) (void)sys_->Munmap(base_, size_);
}

}  // namespace countersd
