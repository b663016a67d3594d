#include "shared/set_aside.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "shared/abseil_string_view.h"
#include "shared/status_macros.h"

namespace countersd {

absl::StatusOr<std::string> SetAside(Sys* sys, const std::string& dir, std::string_view name,
                                     std::string_view kind) {
  auto exists = [&dir](const std::string& n) {
    struct stat st;
    return lstat(absl::StrCat(dir, "/", n).c_str(), &st) == 0;
  };
  const std::string base =
      absl::StrCat(Sv(name), ".", Sv(kind), "-",
                   absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()));
  std::string target = base;
  for (int i = 1; exists(target); ++i) target = absl::StrCat(base, ".", i);
  RETURN_IF_ERROR(sys->Rename(absl::StrCat(dir, "/", Sv(name)), absl::StrCat(dir, "/", target)));
  RETURN_IF_ERROR(sys->FsyncDir(dir));
  return target;
}

}  // namespace countersd
