// The system calls that touch the map and snapshot files, behind one small
// interface so that tests can inject failures (ENOSPC, EIO) into exactly the
// call they want to break, without mocking the rest of the system.
//
// Every method returns OK or a Status built by ErrnoToStatus naming the call.
#ifndef COUNTERSD_SHARED_SYS_H_
#define COUNTERSD_SHARED_SYS_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace countersd {

// The one place that turns an errno into a Status. `call` names the failed
// call and its object, e.g. "msync(snapshot)". ENOSPC/EDQUOT map to
// RESOURCE_EXHAUSTED, EACCES/EPERM to PERMISSION_DENIED, ENOENT to NOT_FOUND,
// EEXIST to ALREADY_EXISTS, EINVAL to INVALID_ARGUMENT, the rest to INTERNAL.
absl::Status ErrnoToStatus(int err, std::string_view call);

class Sys {
 public:
  virtual ~Sys() = default;
  virtual absl::StatusOr<int> Open(const std::string& path, int flags, mode_t mode);
  virtual absl::Status Close(int fd);
  virtual absl::Status Fstat(int fd, struct stat* st, std::string_view what);
  virtual absl::Status Ftruncate(int fd, off_t size, std::string_view what);
  // pwrite of all `len` bytes at `offset` (a short write is retried).
  virtual absl::Status Pwrite(int fd, const void* buf, size_t len, off_t offset,
                              std::string_view what);
  // pread of all `len` bytes at `offset` (a short read or EINTR is
  // retried). OUT_OF_RANGE if the file ends first. Reading a hole returns
  // zeros and allocates nothing, on tmpfs too (shared/read_only_map.h).
  virtual absl::Status Pread(int fd, void* buf, size_t len, off_t offset, std::string_view what);
  virtual absl::StatusOr<void*> Mmap(size_t len, int prot, int flags, int fd,
                                     std::string_view what);
  virtual absl::Status Munmap(void* addr, size_t len);
  // msync(MS_SYNC) of [addr, addr+len); addr is rounded down to a page.
  virtual absl::Status Msync(void* addr, size_t len, std::string_view what);
  virtual absl::Status Fsync(int fd, std::string_view what);
  // fsync of a directory: makes the creates, renames and unlinks in it
  // durable (a file's own fsync does not cover its directory entry).
  virtual absl::Status FsyncDir(const std::string& dir);
  virtual absl::Status Rename(const std::string& from, const std::string& to);
  virtual absl::Status Unlink(const std::string& path);
  // posix_fallocate of [offset, offset+len): allocates the blocks, so that a
  // store into a MAP_SHARED page of the range can never take SIGBUS for want
  // of disk space. RESOURCE_EXHAUSTED on a full disk.
  virtual absl::Status Fallocate(int fd, off_t offset, off_t len, std::string_view what);
  // This boot's id (CurrentBootId below); a test fakes a reboot by
  // returning another.
  virtual absl::StatusOr<std::string> BootId();
};

// The process-wide real implementation.
Sys* RealSys();

// Opens a file of a data directory (the map, the snapshot file) through
// `sys`: never follows a symbolic link (O_NOFOLLOW; a link there could make
// the daemon truncate and write a file outside the directory), and accepts
// only a regular file. FAILED_PRECONDITION naming the file for a link or a
// file of another type; the other errors of open(2) as ErrnoToStatus.
// O_CLOEXEC (and O_NONBLOCK, for a FIFO) are always added.
absl::StatusOr<int> OpenDataFile(Sys* sys, const std::string& path, int flags, mode_t mode);

// Linux boot id (/proc/sys/kernel/random/boot_id), 36 characters; it changes
// at every boot, so a map file whose header holds another one did not
// survive in the page cache and may be torn.
absl::StatusOr<std::string> CurrentBootId();

// Wall clock in nanoseconds since the epoch.
int64_t UnixNanos();

}  // namespace countersd

#endif  // COUNTERSD_SHARED_SYS_H_
