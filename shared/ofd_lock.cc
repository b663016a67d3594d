#include "shared/ofd_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "absl/strings/str_cat.h"

namespace countersd {
namespace {

struct flock ByteLock(short type, off_t offset) {
  struct flock fl = {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = offset;
  fl.l_len = 1;
  fl.l_pid = 0;  // required by F_OFD_*
  return fl;
}

}  // namespace

absl::StatusOr<bool> TryLockByte(int fd, off_t offset, const char* what) {
  struct flock fl = ByteLock(F_WRLCK, offset);
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return false;
  return absl::InternalError(
      absl::StrCat("fcntl(F_OFD_SETLK) on ", what, " at byte ", offset, ": ", strerror(errno)));
}

void UnlockByte(int fd, off_t offset) {
  struct flock fl = ByteLock(F_UNLCK, offset);
  (void)fcntl(fd, F_OFD_SETLK, &fl);
}

bool ByteLockedByOther(int fd, off_t offset) {
  struct flock fl = ByteLock(F_WRLCK, offset);
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;
  return fl.l_type != F_UNLCK;
}

}  // namespace countersd
