// The local attach flags (attach_config.h): their definitions and checks.
#include "server/attach_config.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "server/transport_config.h"

ABSL_FLAG(bool, attach, true,
          "Serve <data-dir>/attach.sock, through which processes on this host (or containers "
          "that share the data directory) attach to the live table and increment it with no "
          "RPC (the countersd::local library, libcountersd_local.so). Only whoever may open the "
          "map file read-write can attach: the daemon's user, or --attach-group.");
ABSL_FLAG(std::string, attach_group, "",
          "Also let this group (a name or a number) attach: the data directory becomes 0750 "
          "and the map file and attach.sock 0660 with this group. An attached process is as "
          "trusted as a handler (no auth file applies to it).");

namespace countersd {

absl::Status ReadAttachFlags(AttachConfig* config) {
  config->enabled = absl::GetFlag(FLAGS_attach);
  config->group = absl::GetFlag(FLAGS_attach_group);
  if (config->group.empty()) return absl::OkStatus();
  if (!config->enabled) {
    return absl::InvalidArgumentError(
        "--attach-group needs --attach (it says who may attach, and attaching is off)");
  }
  if (absl::StatusOr<std::optional<gid_t>> gid = LookUpGroup("attach-group", config->group);
      !gid.ok()) {
    return absl::InvalidArgumentError(gid.status().message());
  }
  return absl::OkStatus();
}

}  // namespace countersd
