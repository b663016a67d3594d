// The local attach flags: whether the supervisor serves
// <data-dir>/attach.sock (--attach) and which group besides the daemon's
// user may attach (--attach-group). Defined, read and validated in
// attach_config.cc; listed in --help by config.cc with the other flags,
// and so also COUNTERSD_ATTACH* (flag_environment.h). gRPC-free.
//
// Who may attach is whoever may open the map file read-write: the
// daemon's user by default (the file is 0600). --attach-group makes the
// data directory group-searchable (0750) and the map file and the socket
// group read-write (0660) for that group. An attached process is as
// trusted as a handler: it writes the table directly, with no auth file
// (ARCHITECTURE.md, "Local attach").
#ifndef COUNTERSD_SERVER_ATTACH_CONFIG_H_
#define COUNTERSD_SERVER_ATTACH_CONFIG_H_

#include <string>

#include "absl/status/status.h"

namespace countersd {

#define COUNTERSD_ATTACH_FLAG_NAMES "attach", "attach_group"

struct AttachConfig {
  bool enabled = true;
  std::string group;  // empty: the daemon's user only
};

// Reads the attach flags. INVALID_ARGUMENT naming --attach-group for a
// group this host does not have, or a group given with --attach=false.
absl::Status ReadAttachFlags(AttachConfig* config);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_ATTACH_CONFIG_H_
