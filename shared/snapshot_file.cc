#include "shared/snapshot_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "shared/coding.h"
#include "shared/data_dir.h"
#include "shared/key.h"
#include "shared/read_only_map.h"
#include "shared/set_aside.h"
#include "shared/snapshot_format.h"
#include "shared/status_macros.h"

namespace countersd {
namespace {

using namespace snapshot_format;  // NOLINT: the format's constants

// A meta page, decoded. Written only by the snapshot writer, after its half
// is durable; covered by meta_crc.
struct SnapshotMeta {
  char magic[8];
  uint32_t version;
  uint32_t half;  // == generation % 2
  uint64_t generation;
  uint64_t half_size;  // bytes per half; the same in both metas
  uint64_t data_len;
  uint64_t counters;
  uint64_t capacity;
  int64_t unix_ns;
  char boot_id[kBootIdSize];
  uint32_t data_crc;
  uint32_t meta_crc;  // crc32 of the encoded bytes before it
};

uint32_t Crc(const void* p, size_t n) {
  uLong c = crc32(0, nullptr, 0);
  const Bytef* b = static_cast<const Bytef*>(p);
  while (n > 0) {  // zlib takes uInt lengths
    uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    c = crc32(c, b, chunk);
    b += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}

// Encodes `m` into the first kMetaSize bytes of a meta page, with its
// meta_crc computed over the encoding.
void EncodeMeta(const SnapshotMeta& m, char* page) {
  std::memcpy(page + kMagicOffset, m.magic, sizeof m.magic);
  EncodeFixed32(page + kVersionOffset, m.version);
  EncodeFixed32(page + kHalfOffset, m.half);
  EncodeFixed64(page + kGenerationOffset, m.generation);
  EncodeFixed64(page + kHalfSizeOffset, m.half_size);
  EncodeFixed64(page + kDataLenOffset, m.data_len);
  EncodeFixed64(page + kCountersOffset, m.counters);
  EncodeFixed64(page + kCapacityOffset, m.capacity);
  EncodeFixed64(page + kUnixNsOffset, static_cast<uint64_t>(m.unix_ns));
  std::memcpy(page + kBootIdOffset, m.boot_id, kBootIdSize);
  EncodeFixed32(page + kDataCrcOffset, m.data_crc);
  EncodeFixed32(page + kMetaCrcOffset, Crc(page, kMetaCrcOffset));
}

// Decodes a meta page; meta_crc is the stored one (the caller checks it
// against Crc(page, kMetaCrcOffset)).
SnapshotMeta DecodeMeta(const char* page) {
  SnapshotMeta m;
  std::memcpy(m.magic, page + kMagicOffset, sizeof m.magic);
  m.version = DecodeFixed32(page + kVersionOffset);
  m.half = DecodeFixed32(page + kHalfOffset);
  m.generation = DecodeFixed64(page + kGenerationOffset);
  m.half_size = DecodeFixed64(page + kHalfSizeOffset);
  m.data_len = DecodeFixed64(page + kDataLenOffset);
  m.counters = DecodeFixed64(page + kCountersOffset);
  m.capacity = DecodeFixed64(page + kCapacityOffset);
  m.unix_ns = static_cast<int64_t>(DecodeFixed64(page + kUnixNsOffset));
  std::memcpy(m.boot_id, page + kBootIdOffset, kBootIdSize);
  m.data_crc = DecodeFixed32(page + kDataCrcOffset);
  m.meta_crc = DecodeFixed32(page + kMetaCrcOffset);
  return m;
}

uint64_t HalfSizeFor(uint64_t capacity) {
  // Every counter and every session place, each at its largest, and the
  // log's marks.
  uint64_t bytes =
      std::max<uint64_t>(capacity, 1) * kMaxRecord + kSessionSlots * kMaxSessionRecord + kMaxMarks;
  return (bytes + kMetaPage - 1) / kMetaPage * kMetaPage;
}

bool AllZero(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (c[i] != 0) return false;
  }
  return true;
}

// Parses one session record at p (before end, untrusted): its end, or
// null when it is malformed (snapshot_format.h's rules).
const char* ParseSessionRecord(const char* p, const char* end, SessionRecord* rec) {
  if (static_cast<uint64_t>(end - p) < kSessionHeader) return nullptr;
  rec->id.assign(p, 16);
  rec->last_write_unix_ns = static_cast<int64_t>(DecodeFixed64(p + 16));
  rec->highest = DecodeFixed64(p + 24);
  const uint16_t entries = DecodeFixed16(p + 32);
  p += kSessionHeader;
  if (entries > kSessionWindow) return nullptr;
  rec->entries.resize(entries);
  uint64_t values = 0, last = 0;
  for (SessionRecord::Entry& e : rec->entries) {
    if (static_cast<uint64_t>(end - p) < kSessionEntryHeader) return nullptr;
    e.sequence = DecodeFixed64(p);
    e.fingerprint = DecodeFixed64(p + 8);
    e.flag = p[16] != 0;
    const uint16_t count = DecodeFixed16(p + 17);
    p += kSessionEntryHeader;
    values += count;
    if (count == 0 || values > kSessionResponseValues || e.sequence <= last ||
        e.sequence > rec->highest || rec->highest - e.sequence >= kSessionWindow ||
        static_cast<uint64_t>(end - p) < uint64_t{count} * 8) {
      return nullptr;
    }
    last = e.sequence;
    e.values.resize(count);
    for (uint16_t k = 0; k < count; ++k) e.values[k] = static_cast<int64_t>(DecodeFixed64(p + 8 * k));
    p += uint64_t{count} * 8;
  }
  return p;
}

// Validates meta k of a file image of `size` >= kDataStart bytes. Every
// field is untrusted: the data range is checked without overflow before
// anything in it is read.
SnapshotSlotCheck CheckHalf(const char* base, uint64_t size, int k) {
  SnapshotSlotCheck check;
  check.index = k;
  const char* page = base + k * kMetaPage;
  const SnapshotMeta m = DecodeMeta(page);
  auto bad = [&](const std::string& why) {
    check.status = absl::DataLossError(absl::StrCat("snapshot meta ", k, ": ", why));
    return check;
  };
  if (AllZero(page, kMetaSize)) {
    check.never_written = true;
    return bad("empty (never written)");
  }
  if (std::memcmp(m.magic, kMagic, sizeof m.magic) != 0) return bad("bad magic");
  if (m.version != kSnapshotVersion && m.version != kSnapshotVersionBeforeSessions) {
    return bad(absl::StrCat("format version ", m.version, ", this build reads ", kSnapshotVersion));
  }
  if (m.meta_crc != Crc(page, kMetaCrcOffset)) return bad("meta checksum mismatch");
  check.meta.generation = m.generation;
  check.meta.counters = m.counters;
  check.meta.bytes = m.data_len;
  check.meta.capacity = m.capacity;
  check.meta.unix_ns = m.unix_ns;
  check.meta.boot_id = std::string(m.boot_id, strnlen(m.boot_id, sizeof m.boot_id));
  if (m.half != static_cast<uint32_t>(k) || m.generation % 2 != static_cast<uint64_t>(k)) {
    return bad("meta is in the wrong slot for its generation");
  }
  uint64_t off = 0, end = 0;
  if (m.data_len > m.half_size || __builtin_mul_overflow(uint64_t(k), m.half_size, &off) ||
      __builtin_add_overflow(off, kDataStart, &off) ||
      __builtin_add_overflow(off, m.half_size, &end) || end > size) {
    return bad(absl::StrCat("data range of half ", k, " (", m.half_size, "-byte halves, ",
                            m.data_len, " bytes of data) lies outside the ", size,
                            "-byte file (truncated?)"));
  }
  if (m.data_crc != Crc(base + off, m.data_len)) {
    return bad(absl::StrCat("data checksum mismatch for generation ", m.generation));
  }
  check.status = absl::OkStatus();
  return check;
}

// Maps a snapshot file read-only; the caller munmaps. A sparse file (an
// older version's) is read into private memory instead, so that a hole
// never faults: on a full tmpfs that would be SIGBUS (read_only_map.h).
absl::StatusOr<std::pair<char*, uint64_t>> MapReadOnly(const std::string& path, Sys* sys) {
  ASSIGN_OR_RETURN(int fd, OpenDataFile(sys, path, O_RDONLY, 0));
  struct stat st;
  if (absl::Status s = sys->Fstat(fd, &st, path); !s.ok()) {
    (void)sys->Close(fd);
    return s;
  }
  if (static_cast<uint64_t>(st.st_size) < kDataStart) {
    (void)sys->Close(fd);
    return absl::FailedPreconditionError(absl::StrCat("snapshot file ", path, " is ", st.st_size,
                                                      " bytes, too short for its two meta pages"));
  }
  absl::StatusOr<char*> p = MapForReading(sys, fd, st, path);
  (void)sys->Close(fd);
  if (!p.ok()) return p.status();
  return std::make_pair(*p, static_cast<uint64_t>(st.st_size));
}

std::vector<SnapshotSlotCheck> CheckMapped(const char* base, uint64_t size) {
  return {CheckHalf(base, size, 0), CheckHalf(base, size, 1)};
}

const SnapshotSlotCheck* Newest(const std::vector<SnapshotSlotCheck>& checks) {
  const SnapshotSlotCheck* best = nullptr;
  for (const auto& c : checks) {
    if (c.status.ok() && (!best || c.meta.generation > best->meta.generation)) best = &c;
  }
  return best;
}


// The directory that holds `path`.
std::string DirOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// Writes `records` as the snapshot `m` describes (generation, half, half
// size and the other fields; data_len and data_crc are set here) into the
// file mapped at `base`, in the durable order: the records into half m.half,
// msync them; then meta m.half, msync its page. A failure returns at once:
// the other half and its meta are never touched.
// `tail` (the log's marks) follows `records` in the half.
absl::Status CommitSnapshot(Sys* sys, char* base, SnapshotMeta m, std::string_view records,
                            std::string_view tail = {}) {
  char* data = base + kDataStart + m.half * m.half_size;
  // std::copy, not memcpy: an empty view may have a null data() (UB for memcpy).
  std::copy(tail.begin(), tail.end(), std::copy(records.begin(), records.end(), data));
  const size_t len = records.size() + tail.size();
  if (len != 0) RETURN_IF_ERROR(sys->Msync(data, len, "snapshot data"));
  m.data_len = len;
  m.data_crc = Crc(data, len);
  EncodeMeta(m, base + m.half * kMetaPage);
  return sys->Msync(base + m.half * kMetaPage, kMetaPage, "snapshot meta");
}

// Makes a new snapshot file with halves of `half_size` under <path>.new
// (a leftover one of ours is removed first): sized, every block allocated,
// holding `carry` and its `records` if given (the newest snapshot of the
// file it replaces, with the new half size), fsynced; then renames it over
// `path` and fsyncs the directory. On failure before the rename, <path>.new
// is removed and `path` is untouched.
absl::Status BuildAndReplace(Sys* sys, const std::string& path, uint64_t half_size,
                             const SnapshotMeta* carry, std::string_view records) {
  const std::string tmp = absl::StrCat(path, kNewFileSuffix);
  if (struct stat st; lstat(tmp.c_str(), &st) == 0) RETURN_IF_ERROR(sys->Unlink(tmp));
  ASSIGN_OR_RETURN(int fd, OpenDataFile(sys, tmp, O_RDWR | O_CREAT | O_EXCL, 0600));
  const uint64_t size = kDataStart + 2 * half_size;
  char* base = nullptr;
  absl::Status s = [&]() -> absl::Status {
    RETURN_IF_ERROR(sys->Ftruncate(fd, static_cast<off_t>(size), tmp));
    if (absl::Status a = sys->Fallocate(fd, 0, static_cast<off_t>(size), tmp); !a.ok()) {
      return absl::Status(a.code(), absl::StrCat(a.message(), ": the snapshot file needs ", size,
                                                 " bytes for its two halves"));
    }
    if (carry) {
      ASSIGN_OR_RETURN(void* p, sys->Mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, tmp));
      base = static_cast<char*>(p);
      SnapshotMeta m = *carry;
      m.half_size = half_size;
      RETURN_IF_ERROR(CommitSnapshot(sys, base, m, records));
    }
    return sys->Fsync(fd, tmp);  // the size and the allocation, too
  }();
  if (base) (void)sys->Munmap(base, size);
  (void)sys->Close(fd);  // everything in it is durable or the build failed
  if (s.ok()) s = sys->Rename(tmp, path);
  if (!s.ok()) {
    (void)sys->Unlink(tmp);  // our own half-made file, never a user's
    return s;
  }
  return sys->FsyncDir(DirOf(path));
}

}  // namespace

void AppendSessionRecord(std::string* out, const SessionRecord& session) {
  char buf[kSessionEntryHeader];
  out->append(session.id.data(), std::min<size_t>(session.id.size(), 16));
  out->append(16 - std::min<size_t>(session.id.size(), 16), '\0');
  EncodeFixed64(buf, static_cast<uint64_t>(session.last_write_unix_ns));
  out->append(buf, 8);
  EncodeFixed64(buf, session.highest);
  out->append(buf, 8);
  EncodeFixed16(buf, static_cast<uint16_t>(session.entries.size()));
  out->append(buf, 2);
  for (const SessionRecord::Entry& e : session.entries) {
    EncodeFixed64(buf, e.sequence);
    EncodeFixed64(buf + 8, e.fingerprint);
    buf[16] = e.flag ? 1 : 0;
    EncodeFixed16(buf + 17, static_cast<uint16_t>(e.values.size()));
    out->append(buf, kSessionEntryHeader);
    for (int64_t v : e.values) {
      EncodeFixed64(buf, static_cast<uint64_t>(v));
      out->append(buf, 8);
    }
  }
}

void AppendWalMarks(std::string* out, const WalMarks& marks) {
  char buf[8];
  EncodeFixed64(buf, marks.floor);
  out->append(buf, 8);
  for (uint64_t lsn : marks.region_lsn) {
    EncodeFixed64(buf, lsn);
    out->append(buf, 8);
  }
  EncodeFixed32(buf, static_cast<uint32_t>(marks.region_lsn.size()));
  out->append(buf, 4);
  out->append(kMarksTag, 4);
}

void AppendSnapshotRecord(std::string* out, std::string_view key, int64_t value) {
  const uint16_t len = static_cast<uint16_t>(key.size());
  char buf[kMaxRecord];
  EncodeFixed16(buf, len);
  std::memcpy(buf + 2, key.data(), len);
  EncodeFixed64(buf + 2 + len, static_cast<uint64_t>(value));
  out->append(buf, 2 + len + 8);
}

absl::StatusOr<std::unique_ptr<SnapshotFile>> SnapshotFile::OpenForWrite(
    const std::string& path, uint64_t capacity, Sys* sys, SnapshotOpenReport* report) {
  SnapshotOpenReport unused;
  if (report == nullptr) report = &unused;
  *report = SnapshotOpenReport();
  const uint64_t wanted_half = HalfSizeFor(capacity);
  // At most two passes: the file found, then the file this call made.
  for (int pass = 0; pass < 2; ++pass) {
    absl::StatusOr<int> fd = OpenDataFile(sys, path, O_RDWR, 0);
    if (absl::IsNotFound(fd.status()) && pass == 0) {
      RETURN_IF_ERROR(BuildAndReplace(sys, path, wanted_half, nullptr, {}));
      report->created = true;
      continue;
    }
    if (!fd.ok()) return fd.status();
    auto f = std::unique_ptr<SnapshotFile>(new SnapshotFile());
    f->sys_ = sys;
    f->path_ = path;
    f->fd_ = *fd;
    struct stat st;
    RETURN_IF_ERROR(sys->Fstat(f->fd_, &st, path));
    const uint64_t size = st.st_size;
    // What the file holds: its newest valid snapshot, nothing (blank), or
    // neither (invalid).
    std::string invalid;
    const SnapshotSlotCheck* newest = nullptr;
    std::vector<SnapshotSlotCheck> checks;
    uint64_t half = 0;
    if (size >= kDataStart) {
      // Allocated before it is read, too: on tmpfs even reading a hole of a
      // full file system takes SIGBUS (a file of an older version has holes).
      RETURN_IF_ERROR(sys->Fallocate(f->fd_, 0, static_cast<off_t>(size), path));
      ASSIGN_OR_RETURN(void* p, sys->Mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd_, path));
      f->base_ = static_cast<char*>(p);
      f->size_ = size;
      checks = CheckMapped(f->base_, size);
      newest = Newest(checks);
      if (newest) {
        half = DecodeMeta(f->base_ + newest->index * kMetaPage).half_size;
        f->generation_ = newest->meta.generation;
      } else if (AllZero(f->base_, kDataStart)) {
        half = (size - kDataStart) / 2;
      } else {
        invalid = absl::StrCat("holds no valid snapshot (", checks[0].status.message(), "; ",
                               checks[1].status.message(), ")");
      }
    } else if (size != 0) {
      invalid = absl::StrCat("is ", size, " bytes, too short for its two meta pages");
    }
    if (invalid.empty() && half >= wanted_half && size == kDataStart + 2 * half) {
      // It fits (and was allocated above). Its name is durable before any
      // snapshot is promised in it: a directory fsync that failed after an
      // earlier rename is made good here.
      RETURN_IF_ERROR(sys->FsyncDir(DirOf(path)));
      f->half_size_ = half;
      return f;
    }
    if (pass == 1) {
      return absl::InternalError(
          absl::StrCat("snapshot file ", path, " just made does not fit capacity ", capacity));
    }
    const std::string dir = DirOf(path);
    const std::string name = std::filesystem::path(path).filename().string();
    if (!invalid.empty()) {
      // Never overwritten: kept aside, byte for byte, and a fresh file made.
      f.reset();
      report->invalid_reason = invalid;
      ASSIGN_OR_RETURN(report->set_aside_as, SetAside(sys, dir, name, kCorruptKind));
      RETURN_IF_ERROR(BuildAndReplace(sys, path, wanted_half, nullptr, {}));
    } else {
      // Too small (or of an odd size): a new file holding the same newest
      // snapshot replaces it. The old mapping stays until the new file is
      // in place, as the source of the records carried over.
      report->grown_from_bytes = size;
      const uint64_t new_half = std::max(half, wanted_half);
      if (newest) {
        const SnapshotMeta m = DecodeMeta(f->base_ + newest->index * kMetaPage);
        const std::string_view records(f->base_ + kDataStart + newest->index * m.half_size,
                                       m.data_len);
        RETURN_IF_ERROR(BuildAndReplace(sys, path, new_half, &m, records));
        report->carried_generation = m.generation;
      } else {
        RETURN_IF_ERROR(BuildAndReplace(sys, path, new_half, nullptr, {}));
      }
    }
    report->created = true;
  }
  return absl::InternalError("unreachable");
}

SnapshotFile::~SnapshotFile() {
  if (base_) (void)sys_->Munmap(base_, size_);
  if (fd_ >= 0) (void)sys_->Close(fd_);
}

absl::StatusOr<SnapshotMetaInfo> SnapshotFile::Write(std::string_view records, uint64_t counters,
                                                     uint64_t capacity, uint64_t sessions,
                                                     const WalMarks& marks) {
  const uint64_t g = generation_ + 1;
  std::string tail;
  AppendWalMarks(&tail, marks);
  if (records.size() + tail.size() > half_size_ || marks.region_lsn.size() > kMaxMarkRegions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "snapshot of ", records.size() + tail.size(), " bytes exceeds the file's half size ",
        half_size_));
  }
  SnapshotMeta m{};
  std::memcpy(m.magic, kMagic, sizeof m.magic);
  m.version = kSnapshotVersion;
  m.half = static_cast<uint32_t>(g % 2);
  m.generation = g;
  m.half_size = half_size_;
  m.counters = counters;
  m.capacity = capacity;
  m.unix_ns = UnixNanos();
  auto boot = sys_->BootId();
  if (boot.ok()) std::memcpy(m.boot_id, boot->data(), std::min(boot->size(), sizeof m.boot_id - 1));
  // On failure the pages may be lost: fail this snapshot. The other half
  // and its meta, the previous generation, were not touched.
  RETURN_IF_ERROR(CommitSnapshot(sys_, base_, m, records, tail));
  generation_ = g;
  SnapshotMetaInfo info;
  info.generation = g;
  info.counters = counters;
  info.sessions = sessions;
  info.wal_marks = marks;
  info.bytes = records.size() + tail.size();
  info.capacity = capacity;
  info.unix_ns = m.unix_ns;
  info.boot_id = boot.ok() ? *boot : "";
  return info;
}

absl::StatusOr<std::vector<SnapshotSlotCheck>> SnapshotFile::Check(const std::string& path,
                                                                   Sys* sys) {
  ASSIGN_OR_RETURN(auto mapped, MapReadOnly(path, sys));
  std::vector<SnapshotSlotCheck> checks = CheckMapped(mapped.first, mapped.second);
  (void)sys->Munmap(mapped.first, mapped.second);
  return checks;
}

absl::StatusOr<SnapshotMetaInfo> SnapshotFile::ReadNewest(
    const std::string& path, const std::function<void(std::string_view, int64_t)>& fn, Sys* sys,
    const SessionFn& session_fn) {
  ASSIGN_OR_RETURN(auto mapped, MapReadOnly(path, sys));
  absl::StatusOr<SnapshotMetaInfo> result =
      ReadNewestImage(std::string_view(mapped.first, mapped.second), path, fn, session_fn);
  (void)sys->Munmap(mapped.first, mapped.second);
  return result;
}

std::vector<SnapshotSlotCheck> SnapshotFile::CheckImage(std::string_view image) {
  return CheckMapped(image.data(), image.size());
}

absl::StatusOr<SnapshotMetaInfo> SnapshotFile::ReadNewestImage(
    std::string_view image, const std::string& name,
    const std::function<void(std::string_view, int64_t)>& fn, const SessionFn& session_fn) {
  const char* base = image.data();
  const std::vector<SnapshotSlotCheck> checks = CheckMapped(base, image.size());
  const SnapshotSlotCheck* newest = Newest(checks);
  if (!newest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot file ", name, " holds no valid snapshot: ", checks[0].status.message(), "; ",
        checks[1].status.message()));
  }
  // CheckHalf proved the newest half's data range inside the image.
  const SnapshotMeta m = DecodeMeta(base + newest->index * kMetaPage);
  const char* p = base + kDataStart + newest->index * m.half_size;
  const char* end = p + m.data_len;
  const char* const start = p;
  auto malformed = [&](const char* at) {
    return absl::DataLossError(absl::StrCat("snapshot generation ", m.generation,
                                            " has malformed records at byte ", at - start));
  };
  // Version 2: the log's marks end the data (read first: they say where
  // the sessions end).
  WalMarks marks;
  if (m.version >= kSnapshotVersion) {
    if (m.data_len < 16 || std::memcmp(end - 4, kMarksTag, 4) != 0) return malformed(end);
    const uint64_t regions = DecodeFixed32(end - 8);
    if (regions > kMaxMarkRegions || m.data_len < 16 + regions * 8) return malformed(end);
    const char* marks_at = end - 8 - regions * 8 - 8;
    marks.floor = DecodeFixed64(marks_at);
    marks.region_lsn.resize(regions);
    for (uint64_t r = 0; r < regions; ++r) marks.region_lsn[r] = DecodeFixed64(marks_at + 8 + 8 * r);
    end = marks_at;
  }
  uint64_t n = 0;
  while (n < m.counters && p < end) {
    if (end - p < 2) break;
    const uint16_t len = DecodeFixed16(p);
    if (len == 0 || len > kMaxKeyBytes || end - p < 2 + len + 8) break;
    const int64_t value = static_cast<int64_t>(DecodeFixed64(p + 2 + len));
    fn(std::string_view(p + 2, len), value);
    p += 2 + len + 8;
    ++n;
  }
  uint64_t sessions = 0;
  SessionRecord rec;
  while (n == m.counters && p < end && m.version >= kSnapshotVersion) {
    const char* after = ParseSessionRecord(p, end, &rec);
    if (after == nullptr) break;
    if (session_fn) session_fn(rec);
    p = after;
    ++sessions;
  }
  if (p != end || n != m.counters) return malformed(p);
  SnapshotMetaInfo info = newest->meta;
  info.sessions = sessions;
  info.wal_marks = std::move(marks);
  return info;
}

}  // namespace countersd
