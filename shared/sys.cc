#include "shared/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "shared/abseil_string_view.h"
#include "shared/status_macros.h"

namespace countersd {

absl::Status ErrnoToStatus(int err, std::string_view call) {
  std::string msg = absl::StrCat(Sv(call), " failed: ", std::strerror(err), " (errno ", err, ")");
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    case EWOULDBLOCK:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<int> Sys::Open(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
  return fd;
}

absl::Status Sys::Close(int fd) {
  if (::close(fd) != 0 && errno != EINTR) return ErrnoToStatus(errno, "close");
  return absl::OkStatus();
}

absl::Status Sys::Fstat(int fd, struct stat* st, std::string_view what) {
  if (::fstat(fd, st) != 0) return ErrnoToStatus(errno, absl::StrCat("fstat(", Sv(what), ")"));
  return absl::OkStatus();
}

absl::StatusOr<int> OpenDataFile(Sys* sys, const std::string& path, int flags, mode_t mode) {
  // O_NONBLOCK: a FIFO put there must not block the open (it is refused
  // below); on a regular file it changes nothing.
  absl::StatusOr<int> fd = sys->Open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
  if (!fd.ok()) {
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path,
                       " is a symbolic link; countersd opens only regular files in its data "
                       "directory and never follows links there: replace it with the file"));
    }
    return fd.status();
  }
  struct stat st;
  absl::Status s = sys->Fstat(*fd, &st, path);
  if (s.ok() && !S_ISREG(st.st_mode)) {
    s = absl::FailedPreconditionError(
        absl::StrCat(path, " is not a regular file; countersd keeps only regular files there"));
  }
  if (!s.ok()) {
    (void)sys->Close(*fd);
    return s;
  }
  return fd;
}

absl::Status Sys::Ftruncate(int fd, off_t size, std::string_view what) {
  if (::ftruncate(fd, size) != 0)
    return ErrnoToStatus(errno, absl::StrCat("ftruncate(", Sv(what), ")"));
  return absl::OkStatus();
}

absl::Status Sys::Pwrite(int fd, const void* buf, size_t len, off_t offset, std::string_view what) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, len, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("pwrite(", Sv(what), ")"));
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

absl::Status Sys::Pread(int fd, void* buf, size_t len, off_t offset, std::string_view what) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("pread(", Sv(what), ")"));
    }
    if (n == 0) {
      return absl::OutOfRangeError(absl::StrCat("pread(", Sv(what), ") met the end of the file at ",
                                                offset, ", ", len, " bytes short"));
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<void*> Sys::Mmap(size_t len, int prot, int flags, int fd, std::string_view what) {
  void* p = ::mmap(nullptr, len, prot, flags, fd, 0);
  if (p == MAP_FAILED) return ErrnoToStatus(errno, absl::StrCat("mmap(", Sv(what), ")"));
  return p;
}

absl::Status Sys::Munmap(void* addr, size_t len) {
  if (::munmap(addr, len) != 0) return ErrnoToStatus(errno, "munmap");
  return absl::OkStatus();
}

absl::Status Sys::Msync(void* addr, size_t len, std::string_view what) {
  static const uintptr_t kPageMask = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)) - 1;
  const uintptr_t misalign = reinterpret_cast<uintptr_t>(addr) & kPageMask;
  char* start = static_cast<char*>(addr) - misalign;
  if (::msync(start, len + misalign, MS_SYNC) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("msync(", Sv(what), ")"));
  }
  return absl::OkStatus();
}

absl::Status Sys::Fsync(int fd, std::string_view what) {
  if (::fsync(fd) != 0) return ErrnoToStatus(errno, absl::StrCat("fsync(", Sv(what), ")"));
  return absl::OkStatus();
}

absl::Status Sys::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("rename(", from, " -> ", to, ")"));
  }
  return absl::OkStatus();
}

absl::Status Sys::FsyncDir(const std::string& dir) {
  ASSIGN_OR_RETURN(int fd, Open(dir, O_RDONLY | O_DIRECTORY, 0));
  absl::Status s = Fsync(fd, absl::StrCat("directory ", dir));
  absl::Status c = Close(fd);
  return s.ok() ? c : s;
}

absl::Status Sys::Unlink(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return ErrnoToStatus(errno, absl::StrCat("unlink(", path, ")"));
  return absl::OkStatus();
}

absl::Status Sys::Fallocate(int fd, off_t offset, off_t len, std::string_view what) {
  int err;
  do {
    err = ::posix_fallocate(fd, offset, len);  // returns the error; errno is not set
  } while (err == EINTR);
  if (err != 0) return ErrnoToStatus(err, absl::StrCat("posix_fallocate(", Sv(what), ")"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Sys::BootId() { return CurrentBootId(); }

Sys* RealSys() {
  static Sys* sys = new Sys();
  return sys;
}

absl::StatusOr<std::string> CurrentBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!in || !std::getline(in, id)) {
    return absl::UnavailableError("cannot read /proc/sys/kernel/random/boot_id");
  }
  return std::string(absl::StripAsciiWhitespace(id));
}

int64_t UnixNanos() { return absl::GetCurrentTimeNanos(); }

}  // namespace countersd
