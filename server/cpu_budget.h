// The CPUs this process may use: the default --handlers.
//
// How it works:
//  1. The affinity mask (sched_getaffinity) says which CPUs the scheduler
//     may run it on.
//  2. A CPU quota may allow less than that: a container limited to 2 CPUs
//     on a 64-core host sees all 64 in its mask. For each line of
//     /proc/self/cgroup:
//       - "0::<path>" (cgroup v2): <root>/<path>/cpu.max ("QUOTA PERIOD",
//         or "max PERIOD" for none);
//       - "<n>:<controllers>:<path>" with cpu among the controllers (cgroup
//         v1): cpu.cfs_quota_us (-1 for none) and cpu.cfs_period_us, under
//         <root>/<controllers> or <root>/cpu;
//     in that cgroup's directory and every parent up to the mount's root (a
//     parent's quota binds its children too; a path the mount does not show,
//     as in a container whose mount is rooted at its own cgroup, is skipped
//     until a parent exists). Each quota allows ceil(QUOTA / PERIOD) CPUs.
//  3. The budget is the tightest of the mask and every quota found, at
//     least 1. The default --handlers is that, at most kMaxHandlers.
// Anything unreadable or malformed is no limit: the budget never fails.
#ifndef COUNTERSD_SERVER_CPU_BUDGET_H_
#define COUNTERSD_SERVER_CPU_BUDGET_H_

#include <string>
#include <string_view>

namespace countersd {

struct CpuBudget {
  int cpus = 1;  // at least 1
  // What decided it, for the start-up log and --help: "2 CPUs in the
  // affinity mask", "cgroup cpu.max 150000/100000 at /sys/fs/cgroup/a/b".
  std::string because;
};

// Step 2 and 3 over given inputs, so that tests can make up a cgroup tree:
// `affinity_cpus` (step 1's count, at least 1), the text of
// /proc/self/cgroup, and the directory cgroup files are read under
// (/sys/fs/cgroup on a real host). Reads only files under `cgroup_root`.
CpuBudget CpuBudgetFrom(int affinity_cpus, std::string_view proc_self_cgroup,
                        const std::string& cgroup_root);

// This process's budget: sched_getaffinity, /proc/self/cgroup and
// /sys/fs/cgroup.
CpuBudget ThisProcessCpuBudget();

// The default --handlers: ThisProcessCpuBudget(), at most kMaxHandlers
// (`because` then says so too).
CpuBudget DefaultHandlers();

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CPU_BUDGET_H_
