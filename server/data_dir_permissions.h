// Who may change the data directory. Whoever can write the directory can
// replace counters.map or counters.snap (or plant a link there), and so
// every counter: the daemon refuses a directory that users other than its
// own can write, and warns when it runs in someone else's directory.
#ifndef COUNTERSD_SERVER_DATA_DIR_PERMISSIONS_H_
#define COUNTERSD_SERVER_DATA_DIR_PERMISSIONS_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "absl/status/status.h"

namespace countersd {

// Checks the directory `dir`, whose stat is `st`, for a daemon running as
// `euid`/`egid`:
//  - writable by others (o+w): FAILED_PRECONDITION naming the mode and the
//    fix (chmod o-w), whatever the sticky bit (the daemon's files are
//    replaceable by their names);
//  - writable by a group that is not the daemon's own gid (g+w):
//    FAILED_PRECONDITION likewise. A group-writable directory of the
//    daemon's own group is accepted: that is how Kubernetes' fsGroup mounts
//    a volume, and that group's members are the daemon's;
//  - owned by another user: OK, with a warning logged (a daemon running as
//    root in a user's directory, say), naming both uids.
absl::Status CheckDataDirPermissions(const std::string& dir, const struct stat& st, uid_t euid,
                                     gid_t egid);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_DATA_DIR_PERMISSIONS_H_
