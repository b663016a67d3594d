#include "server/data_dir_permissions.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "shared/log.h"

namespace countersd {

absl::Status CheckDataDirPermissions(const std::string& dir, const struct stat& st, uid_t euid,
                                     gid_t egid) {
  const std::string mode = absl::StrFormat("%04o", st.st_mode & 07777);
  if (st.st_mode & S_IWOTH) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", dir, " is writable by every user (mode ", mode,
        "): anyone could replace the counter files. Fix: chmod o-w ", dir));
  }
  if ((st.st_mode & S_IWGRP) && st.st_gid != egid) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", dir, " is writable by group ", st.st_gid, " (mode ", mode,
        "), which is not countersd's group (", egid,
        "): its members could replace the counter files. Fix: chmod g-w ", dir,
        ", or chgrp it to countersd's group"));
  }
  if (st.st_uid != euid) {
    Log(LogLevel::kWarning,
        "data directory is owned by another user: that user can replace the counter files",
        {{"data_dir", dir},
         {"owner_uid", static_cast<int64_t>(st.st_uid)},
         {"countersd_uid", static_cast<int64_t>(euid)}});
  }
  return absl::OkStatus();
}

}  // namespace countersd
