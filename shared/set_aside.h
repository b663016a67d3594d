// Setting a file of the data directory aside: a file that failed
// validation (or that can no longer be trusted) is never deleted or
// overwritten; it is renamed to <name>.<kind>-<UTC time>[.N], a name that
// does not exist yet, and the directory is fsynced so that the rename
// survives a host crash. The kinds are in data_dir.h.
#ifndef COUNTERSD_SHARED_SET_ASIDE_H_
#define COUNTERSD_SHARED_SET_ASIDE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "shared/sys.h"

namespace countersd {

// Renames <dir>/<name> aside through `sys` and fsyncs `dir`. Returns the
// new name (without the directory). Errors name the failed call; when the
// rename itself failed, the file is where it was.
absl::StatusOr<std::string> SetAside(Sys* sys, const std::string& dir, std::string_view name,
                                     std::string_view kind);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_SET_ASIDE_H_
