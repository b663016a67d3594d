// The CPUs this process may use (cpu_budget.h has how it works).
#include "server/cpu_budget.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "shared/abseil_string_view.h"
#include "shared/limits.h"

namespace countersd {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// ceil(quota / period) for a positive quota and period; nullopt otherwise
// ("max", -1, garbage).
std::optional<int> CpusOfQuota(absl::string_view quota_text, absl::string_view period_text) {
  int64_t quota = 0;
  int64_t period = 0;
  if (!absl::SimpleAtoi(quota_text, &quota) || !absl::SimpleAtoi(period_text, &period) ||
      quota <= 0 || period <= 0) {
    return std::nullopt;
  }
  const int64_t cpus = quota / period + (quota % period != 0 ? 1 : 0);
  return static_cast<int>(std::min<int64_t>(cpus, INT_MAX));
}

// The quota in the cgroup directory `dir`: cgroup v2's cpu.max or v1's
// cfs files, as the CPUs it allows and what to say about it.
std::optional<CpuBudget> QuotaIn(const std::string& dir, bool v2) {
  if (v2) {
    std::optional<std::string> max = ReadFile(absl::StrCat(dir, "/cpu.max"));
    if (!max) return std::nullopt;
    std::vector<std::string> parts = absl::StrSplit(*max, ' ', absl::SkipEmpty());
    if (parts.size() != 2) return std::nullopt;
    std::optional<int> cpus = CpusOfQuota(parts[0], parts[1]);
    if (!cpus) return std::nullopt;
    return CpuBudget{*cpus, absl::StrCat("cgroup cpu.max ", parts[0], "/", parts[1], " at ", dir)};
  }
  std::optional<std::string> quota = ReadFile(absl::StrCat(dir, "/cpu.cfs_quota_us"));
  std::optional<std::string> period = ReadFile(absl::StrCat(dir, "/cpu.cfs_period_us"));
  if (!quota || !period) return std::nullopt;
  std::optional<int> cpus = CpusOfQuota(*quota, *period);
  if (!cpus) return std::nullopt;
  return CpuBudget{*cpus, absl::StrCat("cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us ", *quota,
                                       "/", *period, " at ", dir)};
}

// The tightest quota of the cgroup at `path` under `mount` and its parents.
void TightenAlongPath(const std::string& mount, std::string path, bool v2, CpuBudget* best) {
  if (path.empty() || path[0] != '/') return;
  while (true) {
    const std::string dir = path == "/" ? mount : absl::StrCat(mount, path);
    if (IsDirectory(dir)) {
      if (std::optional<CpuBudget> q = QuotaIn(dir, v2); q && q->cpus < best->cpus) *best = *q;
    }
    if (path == "/") return;
    const size_t slash = path.rfind('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
}

}  // namespace

CpuBudget CpuBudgetFrom(int affinity_cpus, std::string_view proc_self_cgroup,
                        const std::string& cgroup_root) {
  const int mask = std::max(1, affinity_cpus);
  CpuBudget best{mask, absl::StrCat(mask, mask == 1 ? " CPU" : " CPUs", " in the affinity mask")};
  for (absl::string_view line : absl::StrSplit(Sv(proc_self_cgroup), '\n', absl::SkipEmpty())) {
    // "<id>:<controllers>:<path>"; the path may itself hold ':'.
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    const std::string path(f[2]);
    if (f[0] == "0" && f[1].empty()) {
      TightenAlongPath(cgroup_root, path, /*v2=*/true, &best);
      continue;
    }
    bool has_cpu = false;
    for (absl::string_view c : absl::StrSplit(f[1], ',')) has_cpu = has_cpu || c == "cpu";
    if (!has_cpu) continue;
    for (const std::string& mount :
         {absl::StrCat(cgroup_root, "/", std::string(f[1])), absl::StrCat(cgroup_root, "/cpu")}) {
      if (IsDirectory(mount)) {
        TightenAlongPath(mount, path, /*v2=*/false, &best);
        break;
      }
    }
  }
  return best;
}

CpuBudget ThisProcessCpuBudget() {
  int affinity = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    affinity = CPU_COUNT(&set);
  } else {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    affinity = n > 0 ? static_cast<int>(std::min<long>(n, INT_MAX)) : 1;
  }
  return CpuBudgetFrom(affinity, ReadFile("/proc/self/cgroup").value_or(""), "/sys/fs/cgroup");
}

CpuBudget DefaultHandlers() {
  CpuBudget budget = ThisProcessCpuBudget();
  if (budget.cpus > kMaxHandlers) {
    budget.cpus = kMaxHandlers;
    absl::StrAppend(&budget.because, "; at most ", kMaxHandlers);
  }
  return budget;
}

}  // namespace countersd
