#include "tests/recovery/file_damage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "shared/layout.h"
#include "shared/snapshot_file.h"
#include "shared/sys.h"

namespace countersd::testing {
namespace {

constexpr uint64_t kMetaPage = 4096;

absl::StatusOr<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat(", path, ")"));
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoToStatus(err, absl::StrCat("read(", path, ")"));
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

absl::Status WriteAt(const std::string& path, uint64_t offset, const std::string& bytes) {
  auto size = FileSize(path);
  if (!size.ok()) return size.status();
  if (offset + bytes.size() > *size) {
    return absl::OutOfRangeError(absl::StrCat("write of ", bytes.size(), " bytes at ", offset,
                                              " past the end of ", path, " (", *size, " bytes)"));
  }
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
  ssize_t n = pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(bytes.size())) {
    return ErrnoToStatus(n < 0 ? err : EIO, absl::StrCat("pwrite(", path, ")"));
  }
  return absl::OkStatus();
}

absl::Status FlipByte(const std::string& path, uint64_t offset) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
  char c = 0;
  ssize_t n = pread(fd, &c, 1, static_cast<off_t>(offset));
  close(fd);
  if (n != 1) return absl::OutOfRangeError(absl::StrCat("no byte at ", offset, " in ", path));
  return WriteAt(path, offset, std::string(1, static_cast<char>(c ^ 0xFF)));
}

absl::Status Truncate(const std::string& path, uint64_t size) {
  if (truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("truncate(", path, ")"));
  }
  return absl::OkStatus();
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> DirEntriesWithPrefix(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& name : DirEntries(dir)) {
    if (absl::StartsWith(name, prefix)) out.push_back(name);
  }
  return out;
}

std::map<std::string, std::string> DirContents(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& name : DirEntries(dir)) {
    std::string path = absl::StrCat(dir, "/", name);
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto bytes = ReadWholeFile(path);
    if (bytes.ok()) out[name] = *std::move(bytes);
  }
  return out;
}

absl::StatusOr<std::string> MapBootId(const std::string& map_path) {
  auto bytes = ReadWholeFile(map_path);
  if (!bytes.ok()) return bytes.status();
  constexpr size_t kOffset = offsetof(layout::TableHeader, boot_id);
  constexpr size_t kSize = sizeof(layout::TableHeader::boot_id);
  if (bytes->size() < kOffset + kSize) {
    return absl::FailedPreconditionError(absl::StrCat(map_path, " is too short for a header"));
  }
  std::string id = bytes->substr(kOffset, kSize);
  id.resize(strnlen(id.data(), id.size()));
  return id;
}

absl::Status SetMapBootId(const std::string& map_path, const std::string& boot_id) {
  constexpr size_t kSize = sizeof(layout::TableHeader::boot_id);
  if (boot_id.size() >= kSize) return absl::InvalidArgumentError("boot id too long");
  auto bytes = ReadWholeFile(map_path);
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() < sizeof(layout::TableHeader)) {
    return absl::FailedPreconditionError(absl::StrCat(map_path, " is too short for a header"));
  }
  // The header as its owner would have left it on another boot: the boot id
  // and the trust checksum over it (layout.h, TableHeader invariant 2).
  alignas(layout::TableHeader) char page[sizeof(layout::TableHeader)];
  std::memcpy(page, bytes->data(), sizeof page);
  auto* h = reinterpret_cast<layout::TableHeader*>(page);
  std::memset(h->boot_id, 0, kSize);
  std::memcpy(h->boot_id, boot_id.data(), boot_id.size());
  h->trust_crc = layout::TrustCrc(*h);
  return WriteAt(map_path, 0, std::string(page, sizeof page));
}

absl::StatusOr<std::string> OtherBootId() {
  auto current = CurrentBootId();
  if (!current.ok()) return current.status();
  std::string other = "00000000-0000-4000-8000-000000000000";
  if (other == *current) other[0] = '1';
  return other;
}

uint64_t MapMagicOffset() { return offsetof(layout::TableHeader, magic); }

uint64_t MapChecksummedByteOffset() { return offsetof(layout::TableHeader, created_unix_ns); }

uint64_t MapCleanShutdownOffset() { return offsetof(layout::TableHeader, clean_shutdown); }

absl::StatusOr<std::vector<SnapshotHalf>> ValidSnapshotHalves(const std::string& path) {
  auto size = FileSize(path);
  if (!size.ok()) return size.status();
  if (*size < 2 * kMetaPage) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is shorter than its meta pages"));
  }
  const uint64_t half_size = (*size - 2 * kMetaPage) / 2;
  auto checks = SnapshotFile::Check(path);
  if (!checks.ok()) return checks.status();
  std::vector<SnapshotHalf> halves;
  for (const auto& c : *checks) {
    if (!c.status.ok()) continue;
    SnapshotHalf h;
    h.index = c.index;
    h.generation = c.meta.generation;
    h.meta_offset = c.index * kMetaPage;
    h.data_offset = 2 * kMetaPage + c.index * half_size;
    h.bytes = c.meta.bytes;
    halves.push_back(h);
  }
  std::sort(halves.begin(), halves.end(), [](const SnapshotHalf& a, const SnapshotHalf& b) {
    return a.generation > b.generation;
  });
  return halves;
}

}  // namespace countersd::testing
