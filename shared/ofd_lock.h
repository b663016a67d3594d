// Open file description (OFD) byte-range locks (fcntl F_OFD_SETLK and
// F_OFD_GETLK): the kernel releases one when the last descriptor of the
// open file description that took it is closed, so when its process dies,
// SIGKILL included, in whatever pid namespace. The attach slots of the map
// file use one byte each to say that their attacher is alive
// (table_attach.cc).
//
// Unlike POSIX record locks (F_SETLK), an OFD lock belongs to the open file
// description, not the process: closing another descriptor of the same
// file does not drop it, and threads share it. A fork child inherits the
// description, and with it the lock, until it closes its copy.
#ifndef COUNTERSD_SHARED_OFD_LOCK_H_
#define COUNTERSD_SHARED_OFD_LOCK_H_

#include <sys/types.h>

#include "absl/status/statusor.h"

namespace countersd {

// Takes the write lock on byte `offset` of `fd` (opened for writing),
// without waiting. True if taken; false if another open file description
// holds a lock on it; an error for anything else (naming `what`).
absl::StatusOr<bool> TryLockByte(int fd, off_t offset, const char* what);
// Releases this open file description's lock on byte `offset`.
void UnlockByte(int fd, off_t offset);
// Whether an open file description other than fd's holds a lock on byte
// `offset`. An error of fcntl counts as locked: the caller then treats the
// holder as alive, which is the safe side.
bool ByteLockedByOther(int fd, off_t offset);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_OFD_LOCK_H_
