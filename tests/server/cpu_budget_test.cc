// The CPU budget (server/cpu_budget.h) over made-up cgroup trees in a
// temporary directory, and once on the real machine.
#include "server/cpu_budget.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/limits.h"

namespace countersd {
namespace {

using ::testing::HasSubstr;

// A cgroup mount made up in a temporary directory.
class CgroupTree {
 public:
  CgroupTree() {
    char tmpl[] = "/tmp/cpu-budget-test-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~CgroupTree() { std::filesystem::remove_all(root_); }
  const std::string& root() const { return root_; }
  // Writes `text` to <root>/<path> (a path under the root: "a/b/cpu.max").
  void Write(const std::string& path, const std::string& text) const {
    const std::filesystem::path file = std::filesystem::path(root_) / path;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text << "\n";
  }
  void Mkdir(const std::string& path) const {
    std::filesystem::create_directories(std::filesystem::path(root_) / path);
  }

 private:
  std::string root_;
};

TEST(CpuBudgetTest, WithoutAQuotaTheAffinityMaskDecides) {
  CgroupTree t;
  t.Mkdir("a/b");
  CpuBudget b = CpuBudgetFrom(8, "0::/a/b\n", t.root());
  EXPECT_EQ(b.cpus, 8);
  EXPECT_EQ(b.because, "8 CPUs in the affinity mask");
  EXPECT_EQ(CpuBudgetFrom(1, "", t.root()).because, "1 CPU in the affinity mask");
}

TEST(CpuBudgetTest, CgroupV2CpuMaxLimitsAndRoundsUp) {
  CgroupTree t;
  t.Write("a/b/cpu.max", "200000 100000");
  CpuBudget b = CpuBudgetFrom(64, "0::/a/b\n", t.root());
  EXPECT_EQ(b.cpus, 2);
  EXPECT_EQ(b.because, "cgroup cpu.max 200000/100000 at " + t.root() + "/a/b");
  t.Write("a/b/cpu.max", "150000 100000");
  EXPECT_EQ(CpuBudgetFrom(64, "0::/a/b", t.root()).cpus, 2);
  t.Write("a/b/cpu.max", "50000 100000");
  EXPECT_EQ(CpuBudgetFrom(64, "0::/a/b", t.root()).cpus, 1);
}

TEST(CpuBudgetTest, MaxMeansNoLimit) {
  CgroupTree t;
  t.Write("a/cpu.max", "max 100000");
  EXPECT_EQ(CpuBudgetFrom(4, "0::/a", t.root()).cpus, 4);
}

TEST(CpuBudgetTest, TheTightestOfTheCgroupAndItsParentsWins) {
  CgroupTree t;
  t.Write("a/cpu.max", "100000 100000");
  t.Write("a/b/cpu.max", "300000 100000");
  t.Write("a/b/c/cpu.max", "max 100000");
  CpuBudget b = CpuBudgetFrom(64, "0::/a/b/c", t.root());
  EXPECT_EQ(b.cpus, 1);
  EXPECT_THAT(b.because, HasSubstr("100000/100000 at " + t.root() + "/a"));
  // The mount's own root counts too (a container's cgroup namespace).
  t.Write("cpu.max", "50000 100000");
  t.Write("a/cpu.max", "max 100000");
  EXPECT_EQ(CpuBudgetFrom(64, "0::/a/b/c", t.root()).because,
            "cgroup cpu.max 50000/100000 at " + t.root());
}

TEST(CpuBudgetTest, APathTheMountDoesNotShowFallsBackToTheParentsItHas) {
  // A container whose mount is rooted at its own cgroup still reads the
  // host's path in /proc/self/cgroup.
  CgroupTree t;
  t.Write("cpu.max", "300000 100000");
  EXPECT_EQ(CpuBudgetFrom(64, "0::/docker/0123abcd", t.root()).cpus, 3);
}

TEST(CpuBudgetTest, TheAffinityMaskWinsWhenItIsTighter) {
  CgroupTree t;
  t.Write("a/cpu.max", "400000 100000");
  CpuBudget b = CpuBudgetFrom(2, "0::/a", t.root());
  EXPECT_EQ(b.cpus, 2);
  EXPECT_EQ(b.because, "2 CPUs in the affinity mask");
}

TEST(CpuBudgetTest, CgroupV1CfsQuota) {
  CgroupTree t;
  t.Write("cpu,cpuacct/grp/cpu.cfs_quota_us", "300000");
  t.Write("cpu,cpuacct/grp/cpu.cfs_period_us", "100000");
  CpuBudget b = CpuBudgetFrom(16, "5:memory:/grp\n4:cpu,cpuacct:/grp\n0::/grp\n", t.root());
  EXPECT_EQ(b.cpus, 3);
  EXPECT_EQ(b.because, "cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us 300000/100000 at " +
                           t.root() + "/cpu,cpuacct/grp");
  // -1: no quota.
  t.Write("cpu,cpuacct/grp/cpu.cfs_quota_us", "-1");
  EXPECT_EQ(CpuBudgetFrom(16, "4:cpu,cpuacct:/grp\n", t.root()).cpus, 16);
}

TEST(CpuBudgetTest, CgroupV1UnderACpuDirectory) {
  CgroupTree t;  // "1:cpu:/x" with the controller mounted at <root>/cpu
  t.Write("cpu/cpu.cfs_quota_us", "250000");
  t.Write("cpu/cpu.cfs_period_us", "100000");
  t.Mkdir("cpu/x");
  EXPECT_EQ(CpuBudgetFrom(16, "2:cpuacct:/x\n1:cpu:/x\n", t.root()).cpus, 3);
}

TEST(CpuBudgetTest, BothVersionsTheTightestWins) {
  CgroupTree t;
  t.Write("cpu/g/cpu.cfs_quota_us", "400000");
  t.Write("cpu/g/cpu.cfs_period_us", "100000");
  t.Write("g/cpu.max", "200000 100000");
  EXPECT_EQ(CpuBudgetFrom(16, "1:cpu:/g\n0::/g\n", t.root()).cpus, 2);
}

TEST(CpuBudgetTest, MalformedFilesAreNoLimit) {
  CgroupTree t;
  for (const char* text : {"garbage", "0 100000", "100000 0", "100000", "-5 100000", ""}) {
    t.Write("a/cpu.max", text);
    EXPECT_EQ(CpuBudgetFrom(4, "0::/a", t.root()).cpus, 4) << "'" << text << "'";
  }
  EXPECT_EQ(CpuBudgetFrom(4, "not a cgroup line\n::\n0::relative\n", t.root()).cpus, 4);
  EXPECT_EQ(CpuBudgetFrom(0, "", t.root()).cpus, 1);  // never below 1
}

TEST(CpuBudgetTest, ThisMachineFollowsItsAffinityMask) {
  cpu_set_t mask;
  ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  CpuBudget here = ThisProcessCpuBudget();
  EXPECT_GE(here.cpus, 1);
  EXPECT_LE(here.cpus, CPU_COUNT(&mask)) << here.because;
  EXPECT_FALSE(here.because.empty());
  CpuBudget handlers = DefaultHandlers();
  EXPECT_EQ(handlers.cpus, std::min(here.cpus, kMaxHandlers));

  // In a child pinned to one CPU, the budget is 1, because of the mask.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &mask)) ++cpu;
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) _exit(2);
    CpuBudget pinned = ThisProcessCpuBudget();
    _exit(pinned.cpus == 1 && pinned.because == "1 CPU in the affinity mask" ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

}  // namespace
}  // namespace countersd
