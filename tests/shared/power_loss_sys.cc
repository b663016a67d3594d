#include "tests/shared/power_loss_sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "shared/abseil_string_view.h"
#include "shared/status_macros.h"

namespace countersd::testing {
namespace {

// The bytes of page i of `s` (shorter at the end, empty past it).
std::string_view PageOf(const std::string& s, uint64_t i) {
  const uint64_t off = i * kSimPageSize;
  if (off >= s.size()) return {};
  return std::string_view(s).substr(off, kSimPageSize);
}

std::vector<uint64_t> DirtyPages(const std::string& durable, const std::string& current) {
  std::vector<uint64_t> dirty;
  const uint64_t pages =
      (std::max(durable.size(), current.size()) + kSimPageSize - 1) / kSimPageSize;
  for (uint64_t i = 0; i < pages; ++i) {
    if (PageOf(durable, i) != PageOf(current, i)) dirty.push_back(i);
  }
  return dirty;
}

// The names after the first `ops` pending operations.
std::map<std::string, ino_t> NamesAfter(const CrashState& state, size_t ops) {
  std::map<std::string, ino_t> names = state.durable_names;
  for (size_t i = 0; i < ops && i < state.pending.size(); ++i) {
    const PendingDirOp& op = state.pending[i];
    switch (op.kind) {
      case PendingDirOp::kCreate:
        names[op.name] = op.inode;
        break;
      case PendingDirOp::kRename:
        if (auto it = names.find(op.name); it != names.end()) {
          const ino_t inode = it->second;
          names.erase(it);
          names[op.to] = inode;
        }
        break;
      case PendingDirOp::kUnlink:
        names.erase(op.name);
        break;
    }
  }
  return names;
}

CrashChoice Uniform(const CrashState& state, size_t dir_ops, bool current) {
  CrashChoice c;
  c.dir_ops = dir_ops;
  for (const auto& [inode, file] : state.files) {
    c.files[inode] = {current, std::vector<uint8_t>(file.dirty.size(), current ? 0xFF : 0)};
  }
  return c;
}

bool AllZero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

}  // namespace

std::string PendingDirOp::Describe() const {
  switch (kind) {
    case kCreate:
      return absl::StrCat("create ", name);
    case kRename:
      return absl::StrCat("rename ", name, " -> ", to);
    case kUnlink:
      return absl::StrCat("unlink ", name);
  }
  return "?";
}

uint64_t CrashState::dirty_pages() const {
  uint64_t n = 0;
  for (const auto& [inode, file] : files) n += file.dirty.size();
  return n;
}

std::string CrashChoice::Describe(const CrashState& state) const {
  std::vector<std::string> parts;
  std::vector<std::string> ops;
  for (size_t i = 0; i < state.pending.size(); ++i) {
    ops.push_back(absl::StrCat(i < dir_ops ? "" : "lost: ", state.pending[i].Describe()));
  }
  parts.push_back(absl::StrCat("directory operations since the last FsyncDir: ",
                               ops.empty() ? "none" : absl::StrJoin(ops, ", ")));
  for (const auto& [name, inode] : NamesAfter(state, dir_ops)) {
    const CrashState::File& f = state.files.at(inode);
    const auto it = files.find(inode);
    const bool current = it != files.end() && it->second.current_size;
    std::vector<std::string> pages;
    for (size_t k = 0; k < f.dirty.size(); ++k) {
      const uint8_t m = it == files.end() ? 0 : it->second.sectors[k];
      if (m == 0xFF) {
        pages.push_back(absl::StrCat(f.dirty[k], ":new"));
      } else if (m != 0) {
        pages.push_back(absl::StrFormat("%d:torn(sectors 0x%02x new)", f.dirty[k], m));
      }
    }
    parts.push_back(absl::StrCat(
        name, ": ", current ? "current" : "durable", " size ",
        current ? f.current.size() : f.durable.size(), ", ",
        f.dirty.empty() ? "no dirty page"
        : pages.empty()
            ? absl::StrCat(f.dirty.size(), " dirty pages, all lost")
            : absl::StrCat(f.dirty.size(), " dirty pages, written: ", absl::StrJoin(pages, " "))));
  }
  return absl::StrJoin(parts, "; ");
}

CrashImage Materialize(const CrashState& state, const CrashChoice& choice) {
  CrashImage image;
  for (const auto& [name, inode] : NamesAfter(state, choice.dir_ops)) {
    const CrashState::File& f = state.files.at(inode);
    const auto it = choice.files.find(inode);
    const bool current = it != choice.files.end() && it->second.current_size;
    std::string bytes = f.durable;
    bytes.resize(current ? f.current.size() : f.durable.size());  // A3: zeros past it
    if (it != choice.files.end()) {
      for (size_t k = 0; k < f.dirty.size(); ++k) {
        for (size_t s = 0; s < kSimSectorsPerPage; ++s) {
          if (!(it->second.sectors[k] & (1u << s))) continue;
          const uint64_t off = f.dirty[k] * kSimPageSize + s * kSimSectorSize;
          if (off >= bytes.size() || off >= f.current.size()) continue;
          const uint64_t n =
              std::min<uint64_t>({kSimSectorSize, bytes.size() - off, f.current.size() - off});
          bytes.replace(off, n, f.current, off, n);
        }
      }
    }
    image[name] = std::move(bytes);
  }
  return image;
}

std::vector<CrashChoice> CrashChoicesFor(const CrashState& state, uint64_t seed, int random) {
  std::vector<CrashChoice> out;
  const size_t n = state.pending.size();
  for (size_t k = 0; k <= n; ++k) {
    out.push_back(Uniform(state, k, /*current=*/false));
    out.push_back(Uniform(state, k, /*current=*/true));
  }
  for (const auto& [inode, file] : state.files) {
    if (file.dirty.empty() && file.durable.size() == file.current.size()) continue;
    CrashChoice only = Uniform(state, n, false);
    only.files[inode] = {true, std::vector<uint8_t>(file.dirty.size(), 0xFF)};
    out.push_back(std::move(only));
    CrashChoice all_but = Uniform(state, n, true);
    all_but.files[inode] = {false, std::vector<uint8_t>(file.dirty.size(), 0)};
    out.push_back(std::move(all_but));
  }
  if (const uint64_t d = state.dirty_pages(); d > 0 && d <= 4) {
    for (uint32_t bits = 1; bits + 1 < (1u << d); ++bits) {
      CrashChoice c = Uniform(state, n, true);
      uint32_t b = 0;
      for (auto& [inode, fc] : c.files) {
        for (uint8_t& m : fc.sectors) m = (bits >> b++) & 1 ? 0xFF : 0;
      }
      out.push_back(std::move(c));
    }
  }
  std::mt19937_64 rng(seed);
  for (int r = 0; r < random; ++r) {
    CrashChoice c;
    c.dir_ops = rng() % (n + 1);
    for (const auto& [inode, file] : state.files) {
      CrashChoice::FileChoice fc;
      fc.current_size = rng() & 1;
      for (size_t k = 0; k < file.dirty.size(); ++k) {
        switch (rng() % 3) {
          case 0:
            fc.sectors.push_back(0);
            break;
          case 1:
            fc.sectors.push_back(0xFF);
            break;
          default:
            fc.sectors.push_back(static_cast<uint8_t>(1 + rng() % 254));  // torn
        }
      }
      c.files[inode] = std::move(fc);
    }
    out.push_back(std::move(c));
  }
  return out;
}

absl::Status WriteCrashImage(const CrashImage& image, const std::string& dir) {
  for (const auto& [name, bytes] : image) {
    const std::string path = absl::StrCat(dir, "/", name);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
    absl::Status st;
    if (::ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) {
      st = ErrnoToStatus(errno, absl::StrCat("ftruncate(", path, ")"));
    }
    for (uint64_t off = 0; st.ok() && off < bytes.size(); off += kSimPageSize) {
      const std::string_view page = std::string_view(bytes).substr(off, kSimPageSize);
      if (AllZero(page)) continue;  // a hole reads as zeros
      if (::pwrite(fd, page.data(), page.size(), static_cast<off_t>(off)) !=
          static_cast<ssize_t>(page.size())) {
        st = ErrnoToStatus(errno, absl::StrCat("pwrite(", path, ")"));
      }
    }
    ::close(fd);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

// ---- PowerLossSys ----

PowerLossSys::PowerLossSys(std::string dir, std::string boot_id)
    : dir_(std::move(dir)), boot_id_(std::move(boot_id)) {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const std::string path = absl::StrCat(dir_, "/", name);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    inodes_[st.st_ino].read_fd = fd;
    inodes_[st.st_ino].durable = ReadCurrent(st.st_ino);
    durable_names_[name] = st.st_ino;
  }
  ::closedir(d);
}

PowerLossSys::~PowerLossSys() {
  for (auto& [inode, i] : inodes_) ::close(i.read_fd);
}

void PowerLossSys::SetCrashPointHandler(std::function<void(std::string_view)> handler) {
  handler_ = std::move(handler);
}

void PowerLossSys::CrashPoint(std::string_view where) {
  if (!handler_ || in_handler_) return;
  in_handler_ = true;
  ++crash_points_;
  handler_(where);
  in_handler_ = false;
}

void PowerLossSys::TakeAllAsDurable() {
  durable_names_ = CurrentNames();
  pending_.clear();
  ForgetUnreachable();
  for (auto& [inode, i] : inodes_) i.durable = ReadCurrent(inode);
}

std::string PowerLossSys::NameIn(const std::string& path) const {
  if (path.size() <= dir_.size() + 1 || path.compare(0, dir_.size(), dir_) != 0 ||
      path[dir_.size()] != '/') {
    return "";
  }
  std::string name = path.substr(dir_.size() + 1);
  return name.find('/') == std::string::npos ? name : "";
}

void PowerLossSys::Track(int fd, ino_t inode, std::string durable) {
  Inode& i = inodes_[inode];
  if (i.read_fd < 0) {
    i.read_fd = ::open(absl::StrCat("/proc/self/fd/", fd).c_str(), O_RDONLY | O_CLOEXEC);
  }
  i.durable = std::move(durable);
}

std::string PowerLossSys::ReadCurrent(ino_t inode) const {
  const auto it = inodes_.find(inode);
  if (it == inodes_.end()) return "";
  struct stat st;
  if (::fstat(it->second.read_fd, &st) != 0) return "";
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pread(it->second.read_fd, bytes.data() + done, bytes.size() - done,
                        static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return bytes;
}

std::map<std::string, ino_t> PowerLossSys::CurrentNames() const {
  CrashState names_only;
  names_only.durable_names = durable_names_;
  names_only.pending = pending_;
  return NamesAfter(names_only, pending_.size());
}

void PowerLossSys::ForgetUnreachable() {
  std::set<ino_t> reachable;
  for (const auto& [name, inode] : durable_names_) reachable.insert(inode);
  for (const PendingDirOp& op : pending_) {
    if (op.kind == PendingDirOp::kCreate) reachable.insert(op.inode);
  }
  for (auto it = inodes_.begin(); it != inodes_.end();) {
    if (reachable.count(it->first)) {
      ++it;
    } else {
      ::close(it->second.read_fd);
      it = inodes_.erase(it);
    }
  }
}

CrashState PowerLossSys::Capture() const {
  CrashState state;
  state.durable_names = durable_names_;
  state.pending = pending_;
  std::set<ino_t> reachable;
  for (const auto& [name, inode] : durable_names_) reachable.insert(inode);
  for (const PendingDirOp& op : pending_) {
    if (op.kind == PendingDirOp::kCreate) reachable.insert(op.inode);
  }
  for (ino_t inode : reachable) {
    CrashState::File f;
    f.durable = inodes_.at(inode).durable;
    f.current = ReadCurrent(inode);
    f.dirty = DirtyPages(f.durable, f.current);
    state.files[inode] = std::move(f);
  }
  // A6: the directory is what the record says.
  std::map<std::string, ino_t> actual;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      struct stat st;
      const std::string name = e->d_name;
      if (::lstat(absl::StrCat(dir_, "/", name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        actual[name] = st.st_ino;
      }
    }
    ::closedir(d);
  }
  const std::map<std::string, ino_t> recorded = CurrentNames();
  if (actual != recorded) {
    std::vector<std::string> a, r;
    for (const auto& [name, inode] : actual) a.push_back(absl::StrCat(name, "#", inode));
    for (const auto& [name, inode] : recorded) r.push_back(absl::StrCat(name, "#", inode));
    state.inconsistency =
        absl::StrCat("the directory holds {", absl::StrJoin(a, ", "),
                     "} but the calls through the Sys made {", absl::StrJoin(r, ", "), "}");
  }
  return state;
}

absl::StatusOr<int> PowerLossSys::Open(const std::string& path, int flags, mode_t mode) {
  const std::string name = NameIn(path);
  if (name.empty()) return Sys::Open(path, flags, mode);
  CrashPoint(absl::StrCat("before open(", name, ")"));
  struct stat before;
  const bool existed = ::lstat(path.c_str(), &before) == 0;
  absl::StatusOr<int> fd = Sys::Open(path, flags, mode);
  if (!fd.ok()) return fd;
  struct stat st;
  if (::fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) return fd;
  fds_[*fd] = st.st_ino;
  if (!existed) {
    Track(*fd, st.st_ino, "");
    pending_.push_back({PendingDirOp::kCreate, name, "", st.st_ino});
  } else if (!inodes_.count(st.st_ino)) {
    Track(*fd, st.st_ino, "");
    inodes_[st.st_ino].durable = ReadCurrent(st.st_ino);  // A5: found there, durable
  }
  return fd;
}

absl::Status PowerLossSys::Close(int fd) {
  fds_.erase(fd);
  return Sys::Close(fd);
}

absl::Status PowerLossSys::Ftruncate(int fd, off_t size, std::string_view what) {
  CrashPoint(absl::StrCat("before ftruncate(", Sv(what), ")"));
  return Sys::Ftruncate(fd, size, what);
}

absl::Status PowerLossSys::Pwrite(int fd, const void* buf, size_t len, off_t offset,
                                  std::string_view what) {
  CrashPoint(absl::StrCat("before pwrite(", Sv(what), ")"));
  return Sys::Pwrite(fd, buf, len, offset, what);
}

absl::Status PowerLossSys::Fallocate(int fd, off_t offset, off_t len, std::string_view what) {
  CrashPoint(absl::StrCat("before posix_fallocate(", Sv(what), ")"));
  return Sys::Fallocate(fd, offset, len, what);
}

absl::StatusOr<void*> PowerLossSys::Mmap(size_t len, int prot, int flags, int fd,
                                         std::string_view what) {
  absl::StatusOr<void*> p = Sys::Mmap(len, prot, flags, fd, what);
  if (p.ok()) {
    if (auto it = fds_.find(fd); it != fds_.end()) {
      mappings_[static_cast<const char*>(*p)] = {len, it->second};
    }
  }
  return p;
}

absl::Status PowerLossSys::Munmap(void* addr, size_t len) {
  mappings_.erase(static_cast<const char*>(addr));
  return Sys::Munmap(addr, len);
}

absl::Status PowerLossSys::Msync(void* addr, size_t len, std::string_view what) {
  CrashPoint(absl::StrCat("before msync(", Sv(what), ")"));
  const char* a = static_cast<const char*>(addr);
  auto it = mappings_.upper_bound(a);
  if (it == mappings_.begin()) return absl::OkStatus();  // not a modelled file
  --it;
  if (a >= it->first + it->second.len || !inodes_.count(it->second.inode)) {
    return absl::OkStatus();
  }
  Inode& inode = inodes_[it->second.inode];
  const std::string current = ReadCurrent(it->second.inode);
  inode.durable.resize(current.size());  // A3: the size is durable with the data
  const uint64_t from = static_cast<uint64_t>(a - it->first) / kSimPageSize * kSimPageSize;
  const uint64_t to =
      std::min<uint64_t>(current.size(), static_cast<uint64_t>(a - it->first) + len);
  if (to > from) inode.durable.replace(from, to - from, current, from, to - from);
  return absl::OkStatus();
}

absl::Status PowerLossSys::Fsync(int fd, std::string_view what) {
  CrashPoint(absl::StrCat("before fsync(", Sv(what), ")"));
  if (auto it = fds_.find(fd); it != fds_.end() && inodes_.count(it->second)) {
    inodes_[it->second].durable = ReadCurrent(it->second);
  }
  return absl::OkStatus();
}

absl::Status PowerLossSys::FsyncDir(const std::string& dir) {
  CrashPoint(absl::StrCat("before fsync(directory ", dir, ")"));
  if (dir == dir_) {
    durable_names_ = CurrentNames();
    pending_.clear();
    ForgetUnreachable();
  }
  return absl::OkStatus();
}

absl::Status PowerLossSys::Rename(const std::string& from, const std::string& to) {
  const std::string a = NameIn(from), b = NameIn(to);
  if (!a.empty()) CrashPoint(absl::StrCat("before rename(", a, " -> ", b, ")"));
  RETURN_IF_ERROR(Sys::Rename(from, to));
  if (!a.empty() && !b.empty()) pending_.push_back({PendingDirOp::kRename, a, b, 0});
  return absl::OkStatus();
}

absl::Status PowerLossSys::Unlink(const std::string& path) {
  const std::string name = NameIn(path);
  if (!name.empty()) CrashPoint(absl::StrCat("before unlink(", name, ")"));
  RETURN_IF_ERROR(Sys::Unlink(path));
  if (!name.empty()) pending_.push_back({PendingDirOp::kUnlink, name, "", 0});
  return absl::OkStatus();
}

}  // namespace countersd::testing
