// How a table file is created, opened and validated
// ==================================================
//
// Create: compute the geometry for the capacity (regions, slots per region,
// section offsets; ComputeGeometry), create the file O_EXCL mode 0600,
// size it, pwrite a complete header with its checksum, map it, fsync it,
// then initialise the locks and the snapshot staging area. A half-made file
// of ours is unlinked on failure.
//
// Validation (every open, read-only or not), in order, each failure a
// FAILED_PRECONDITION naming what mismatched:
//  1. the header: magic; layout version (a byte-swapped one means a map of
//     the other byte order: the live map is host-native, layout.h); header
//     checksum; the struct sizes of this build; the geometry its capacity
//     implies; the recorded and the actual file size;
//  2. every region's undo record (RegionShared::inserting names a slot of
//     the region) and every slot (ValidateContents; not at Create, whose
//     file is blank): a known state, and for each live slot
//     Slot invariant 2 (a valid key, its stored hash, its region). A slot
//     whose seq is odd is being rewritten by a process that died; crash
//     repair settles it, so it is not judged here.
//
// Open (as the new owner, single-threaded, before any other process maps
// the file): validate, re-initialise every lock, run crash repair
// (crash_repair.cc), clear the clean-shutdown flag, record this boot id,
// reset the snapshot coordination words and make a new staging area.
// OpenReadOnly maps PROT_READ and validates only.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"
#include "shared/key_hash.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::BatchJournal;
using layout::ProcessSlot;
using layout::RegionShared;
using layout::Slot;
using layout::TableHeader;
using table_internal::Pid;
using table_internal::RoundUp;

namespace {

struct Geometry {
  uint32_t regions;
  uint32_t region_slots;
  uint64_t regions_offset;
  uint64_t processes_offset;
  uint64_t journals_offset;
  uint64_t slots_offset;
  uint64_t file_size;
};

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

// The boot id of the table's owner, NUL-padded. REQUIRES: the owner.
void RecordBootId(TableHeader* h, const std::string& boot_id) {
  std::memset(h->boot_id, 0, sizeof h->boot_id);
  std::memcpy(h->boot_id, boot_id.data(), std::min(boot_id.size(), sizeof h->boot_id - 1));
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

absl::StatusOr<std::unique_ptr<CounterTable>> CounterTable::Map(const std::string& path, int fd,
                                                                bool writable, Sys* sys) {
  struct stat st;
  RETURN_IF_ERROR(sys->Fstat(fd, &st, path));
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
  // What the header says as found, before an owner changes it.
  t->opened_info_ = t->Info();
  t->opened_info_.clean_shutdown = h->clean_shutdown.load() != 0;
  t->opened_info_.boot_id = std::string(h->boot_id, strnlen(h->boot_id, sizeof h->boot_id));
  return t;
}

absl::Status CounterTable::ValidateContents() const {
  for (uint32_t r = 0; r < header_->regions; ++r) {
    // The region's undo record names a slot that crash repair will write.
    if (region(r)->inserting > region_slots_) {
      return absl::FailedPreconditionError(
          absl::StrCat("map file region ", r, " names insert slot ", region(r)->inserting - 1,
                       " of ", region_slots_, ": the file is corrupt"));
    }
    const Slot* base = slots(r);
    for (uint32_t i = 0; i < region_slots_; ++i) {
      const Slot& s = base[i];
      if (s.state == layout::kEmpty || s.state == layout::kTombstone) continue;
      if (s.seq.load(std::memory_order_relaxed) & 1) continue;  // mid-rewrite: repair's
      auto bad = [&](std::string_view why) {
        return absl::FailedPreconditionError(absl::StrCat("map file slot ", i, " of region ", r,
                                                          " ", Sv(why), ": the file is corrupt"));
      };
      if (s.state != layout::kLive) return bad(absl::StrCat("has unknown state ", s.state));
      if (s.key_len == 0 || s.key_len > kMaxKeyBytes) {
        return bad(absl::StrCat("has key length ", s.key_len, " (1 to ", kMaxKeyBytes, ")"));
      }
      const std::string_view key = s.stored_key();
      if (absl::Status st = ValidateKey(key); !st.ok()) {
        return bad(absl::StrCat("holds an invalid key (", st.message(), ")"));
      }
      if (s.hash != HashKey(key)) return bad("holds a hash that does not match its key");
      if (RegionOf(s.hash) != r) return bad("holds a key of another region");
    }
  }
  return absl::OkStatus();
}

absl::Status CounterTable::ValidateHeader(uint64_t actual_file_size) const {
  const TableHeader* h = header_;
  if (std::memcmp(h->magic, layout::kMagic, sizeof h->magic) != 0) {
    return absl::FailedPreconditionError("not a countersd map file: bad magic");
  }
  if (h->layout_version != layout::kLayoutVersion) {
    if (h->layout_version == __builtin_bswap32(layout::kLayoutVersion)) {
      return absl::FailedPreconditionError(
          "map file was written by a host of the other byte order; the live map is host-native "
          "and never moves between hosts: restore counters.snap (portable) instead");
    }
    return Mismatch("layout version", h->layout_version, layout::kLayoutVersion);
  }
  if (h->header_crc != HeaderCrc(h)) {
    return absl::FailedPreconditionError(
        "map file header checksum mismatch: the header is corrupt");
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
  if (h->file_size != g.file_size) return Mismatch("recorded size", h->file_size, g.file_size);
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
  absl::Status st = sys->Ftruncate(fd, static_cast<off_t>(g.file_size), path);
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
    h.header_crc = HeaderCrc(&h);
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
  table.opened_info_.boot_id = boot_id;
  RecordBootId(table.header_, boot_id);
  for (uint32_t r = 0; r < table.header_->regions; ++r) StripeLockInit(&table.region(r)->lock);
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

  // Every lock is meaningless now: whoever held it is gone.
  for (uint32_t r = 0; r < h->regions; ++r) StripeLockInit(&table.region(r)->lock);
  OpenReport rep = table.RepairAfterCrash();
  if (report) *report = rep;

  h->clean_shutdown.store(0);
  RecordBootId(h, boot_id);
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
  auto t = Map(path, fd, writable, sys);
  // A map to be written has every block allocated (an older version left
  // holes): no store into it, the repair's included, can take SIGBUS.
  absl::Status allocated =
      t.ok() && writable ? sys->Fallocate(fd, 0, static_cast<off_t>((*t)->size_), path)
                         : absl::OkStatus();
  (void)sys->Close(fd);
  if (!t.ok()) return t.status();
  RETURN_IF_ERROR(allocated);
  RETURN_IF_ERROR((*t)->ValidateContents());
  return t;
}

CounterTable::~CounterTable() {
  if (staging_) (void)sys_->Munmap(staging_, staging_size_);
  if (base_) (void)sys_->Munmap(base_, size_);
}

}  // namespace countersd
