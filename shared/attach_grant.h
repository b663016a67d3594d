// The attach handshake: how a process on the same host (or in a container
// that shares the data directory) gets what it needs to use the live table
// besides the map file, which it opens itself, so that the kernel's file
// permissions decide who may attach.
//
// How it works:
//  1. The supervisor listens on <data-dir>/attach.sock (data_dir.h), made
//     like the gRPC unix sockets (server/unix_listener.h), mode 0600, or
//     0660 with --attach-group. It serves it from its main loop, never
//     blocking (server/attach_listener.cc).
//  2. The attacher connects. Refused or missing: no daemon owns the
//     directory (UNAVAILABLE); EACCES: not the daemon's user nor in its
//     attach group (PERMISSION_DENIED naming the socket).
//  3. The supervisor sends one message, AttachGrantWire, with the snapshot
//     staging area's memfd as SCM_RIGHTS (the copy-on-write area every
//     writer shares, snapshot_staging.cc), and closes the connection. The
//     grant names the live map file (st_dev, st_ino) and the incarnation
//     that admits writers (layout.h, TableHeader invariant 8): the attacher
//     checks both against the file it opened and its header, so that it
//     never attaches to a file set aside or to a daemon's previous life.
// A memfd, not a file in the data directory: the staging area is scratch
// memory as large as the table, which a file would double on disk and
// have written back for nothing.
#ifndef COUNTERSD_SHARED_ATTACH_GRANT_H_
#define COUNTERSD_SHARED_ATTACH_GRANT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace countersd {

struct AttachGrant {
  uint64_t incarnation = 0;
  uint64_t map_dev = 0;
  uint64_t map_ino = 0;
  uint64_t staging_size = 0;
  int staging_fd = -1;  // the receiver owns it
};

// The supervisor's side: one message on an accepted connection, without
// blocking. The descriptor stays the caller's.
absl::Status SendAttachGrant(int connection_fd, const AttachGrant& grant);

// The attacher's side: connects to `socket_path` and receives the grant,
// waiting at most two seconds for it.
absl::StatusOr<AttachGrant> RequestAttachGrant(const std::string& socket_path);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_ATTACH_GRANT_H_
