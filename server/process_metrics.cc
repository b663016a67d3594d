// process_* from /proc (process_metrics.h). How it works:
//   1. /proc/<pid>/stat: the fields after the command's closing parenthesis
//      (the command may hold spaces and parentheses); utime and stime
//      (fields 14, 15) and starttime (22) are in clock ticks
//      (sysconf(_SC_CLK_TCK)), starttime since boot; vsize (23) is bytes,
//      rss (24) pages.
//   2. The boot time: the btime line of /proc/stat (unix seconds).
//   3. /proc/<pid>/fd: one entry per open descriptor.
//   4. /proc/<pid>/limits: the soft limit of "Max open files".
#include "server/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "shared/sys.h"

namespace countersd {
namespace {

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return errno == ENOENT || errno == ESRCH ? absl::NotFoundError(absl::StrCat(path, ": gone"))
                                             : ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<ProcessSample> ReadProcessSample(pid_t pid, const std::string& proc) {
  const std::string dir = absl::StrCat(proc, "/", pid);
  absl::StatusOr<std::string> stat = ReadWhole(dir + "/stat");
  if (!stat.ok()) return stat.status();
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return absl::DataLossError(absl::StrCat(dir, "/stat: no ')'"));
  // Field 3 (state) is the first after the parenthesis.
  std::vector<std::string> f = absl::StrSplit(stat->substr(paren + 2), ' ');
  auto field = [&](int n) -> uint64_t {
    uint64_t v = 0;
    if (n - 3 < static_cast<int>(f.size())) (void)absl::SimpleAtoi(f[n - 3], &v);
    return v;
  };
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcessSample s;
  s.cpu_seconds = static_cast<double>(field(14) + field(15)) / tick;
  s.virtual_bytes = field(23);
  s.resident_bytes = field(24) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

  absl::StatusOr<std::string> boot = ReadWhole(proc + "/stat");
  if (!boot.ok()) return boot.status();
  for (absl::string_view line : absl::StrSplit(*boot, '\n')) {
    uint64_t btime = 0;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtoi(line, &btime)) {
      s.start_time_seconds = static_cast<double>(btime) + static_cast<double>(field(22)) / tick;
    }
  }

  DIR* fds = opendir((dir + "/fd").c_str());
  if (fds == nullptr) return ErrnoToStatus(errno, absl::StrCat("opendir ", dir, "/fd"));
  while (dirent* e = readdir(fds)) {
    if (e->d_name[0] != '.') ++s.open_fds;
  }
  closedir(fds);

  absl::StatusOr<std::string> limits = ReadWhole(dir + "/limits");
  if (!limits.ok()) return limits.status();
  for (absl::string_view line : absl::StrSplit(*limits, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t soft = 0;
    if (!words.empty() && absl::SimpleAtoi(words[0], &soft)) s.max_fds = soft;
  }
  return s;
}

}  // namespace countersd
