#include "tests/shared/fault_injecting_sys.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"

namespace countersd {

std::string_view SysCallName(SysCall call) {
  switch (call) {
    case SysCall::kOpen: return "open";
    case SysCall::kClose: return "close";
    case SysCall::kFstat: return "fstat";
    case SysCall::kFtruncate: return "ftruncate";
    case SysCall::kPwrite: return "pwrite";
    case SysCall::kMmap: return "mmap";
    case SysCall::kMunmap: return "munmap";
    case SysCall::kMsync: return "msync";
    case SysCall::kFsync: return "fsync";
    case SysCall::kFsyncDir: return "fsyncdir";
    case SysCall::kRename: return "rename";
    case SysCall::kUnlink: return "unlink";
    case SysCall::kFallocate: return "posix_fallocate";
  }
  return "?";
}

void FaultInjectingSys::FailNth(SysCall call, int n, int err, std::string match) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{call, n, err, std::move(match)});
}

void FaultInjectingSys::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.clear();
}

int FaultInjectingSys::injected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return injected_;
}

int FaultInjectingSys::calls(SysCall call, std::string_view match) const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const Seen& s : seen_) {
    if (s.call == call && absl::StrContains(s.object, Sv(match))) ++n;
  }
  return n;
}

int FaultInjectingSys::Decide(SysCall call, std::string_view object) {
  std::lock_guard<std::mutex> lock(mu_);
  seen_.push_back(Seen{call, std::string(object)});
  for (Rule& r : rules_) {
    if (r.spent || r.call != call || !absl::StrContains(Sv(object), r.match)) continue;
    if (r.n == 0 || ++r.seen == r.n) {
      if (r.n != 0) r.spent = true;
      ++injected_;
      return r.err;
    }
  }
  return 0;
}

absl::Status FaultInjectingSys::Injected(int err, SysCall call, std::string_view object) {
  return ErrnoToStatus(err, absl::StrCat(Sv(SysCallName(call)), "(", Sv(object), ") [injected]"));
}

absl::StatusOr<int> FaultInjectingSys::Open(const std::string& path, int flags, mode_t mode) {
  if (int err = Decide(SysCall::kOpen, path)) return Injected(err, SysCall::kOpen, path);
  return Sys::Open(path, flags, mode);
}

// Close and Munmap name no file: Close's object is "fd <n>", Munmap's "".
absl::Status FaultInjectingSys::Close(int fd) {
  const std::string object = absl::StrCat("fd ", fd);
  if (int err = Decide(SysCall::kClose, object)) {
    (void)Sys::Close(fd);  // like close(2): the descriptor is gone even when it fails
    return Injected(err, SysCall::kClose, object);
  }
  return Sys::Close(fd);
}

absl::Status FaultInjectingSys::Fstat(int fd, struct stat* st, std::string_view what) {
  if (int err = Decide(SysCall::kFstat, what)) return Injected(err, SysCall::kFstat, what);
  return Sys::Fstat(fd, st, what);
}

absl::Status FaultInjectingSys::Ftruncate(int fd, off_t size, std::string_view what) {
  if (int err = Decide(SysCall::kFtruncate, what)) return Injected(err, SysCall::kFtruncate, what);
  return Sys::Ftruncate(fd, size, what);
}

absl::Status FaultInjectingSys::Pwrite(int fd, const void* buf, size_t len, off_t offset,
                                       std::string_view what) {
  if (int err = Decide(SysCall::kPwrite, what)) return Injected(err, SysCall::kPwrite, what);
  return Sys::Pwrite(fd, buf, len, offset, what);
}

absl::StatusOr<void*> FaultInjectingSys::Mmap(size_t len, int prot, int flags, int fd,
                                              std::string_view what) {
  if (int err = Decide(SysCall::kMmap, what)) return Injected(err, SysCall::kMmap, what);
  return Sys::Mmap(len, prot, flags, fd, what);
}

absl::Status FaultInjectingSys::Munmap(void* addr, size_t len) {
  if (int err = Decide(SysCall::kMunmap, "")) {
    (void)Sys::Munmap(addr, len);  // never leak the mapping in a test
    return Injected(err, SysCall::kMunmap, "");
  }
  return Sys::Munmap(addr, len);
}

absl::Status FaultInjectingSys::Msync(void* addr, size_t len, std::string_view what) {
  if (int err = Decide(SysCall::kMsync, what)) return Injected(err, SysCall::kMsync, what);
  return Sys::Msync(addr, len, what);
}

absl::Status FaultInjectingSys::Fsync(int fd, std::string_view what) {
  if (int err = Decide(SysCall::kFsync, what)) return Injected(err, SysCall::kFsync, what);
  return Sys::Fsync(fd, what);
}

absl::Status FaultInjectingSys::FsyncDir(const std::string& dir) {
  if (int err = Decide(SysCall::kFsyncDir, dir)) return Injected(err, SysCall::kFsyncDir, dir);
  return Sys::FsyncDir(dir);
}

absl::Status FaultInjectingSys::Rename(const std::string& from, const std::string& to) {
  const std::string object = absl::StrCat(from, " -> ", to);
  if (int err = Decide(SysCall::kRename, object)) return Injected(err, SysCall::kRename, object);
  return Sys::Rename(from, to);
}

absl::Status FaultInjectingSys::Unlink(const std::string& path) {
  if (int err = Decide(SysCall::kUnlink, path)) return Injected(err, SysCall::kUnlink, path);
  return Sys::Unlink(path);
}

absl::Status FaultInjectingSys::Fallocate(int fd, off_t offset, off_t len, std::string_view what) {
  if (int err = Decide(SysCall::kFallocate, what)) return Injected(err, SysCall::kFallocate, what);
  return Sys::Fallocate(fd, offset, len, what);
}

}  // namespace countersd
