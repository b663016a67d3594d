// Child processes of a table test that stop inside a critical section (the
// table's test hook, CounterTable::SetCriticalSectionHookForTest), so that
// the test can kill them there or let them go on, and the waits that reap
// them.
#ifndef COUNTERSD_TESTS_SHARED_STOPPED_CHILD_H_
#define COUNTERSD_TESTS_SHARED_STOPPED_CHILD_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "shared/counter_table.h"

namespace countersd::stopped_child {

// The child's hook: stops at the (after+1)-th critical section of `key`.
inline std::string* const g_stop_key = new std::string();
inline int g_stop_after = 0;

inline void StopHook(std::string_view key) {
  if (key == *g_stop_key && g_stop_after-- == 0) raise(SIGSTOP);
}

// Forks a child that runs fn with the hook armed for `key`, skipping its
// first `after` critical sections of that key; returns once the child is
// stopped inside the critical section.
inline pid_t SpawnStoppedInside(const std::string& key, int after,
                                const std::function<void()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    *g_stop_key = key;
    g_stop_after = after;
    CounterTable::SetCriticalSectionHookForTest(StopHook);
    fn();
    _exit(0);
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  EXPECT_TRUE(WIFSTOPPED(status)) << "child did not stop inside the critical section";
  return pid;
}

// Reaps `pid`: its exit code, or 128 + the signal that ended it.
inline int WaitExit(pid_t pid) {
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline void KillAndReap(pid_t pid) {
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child was not ended by our SIGKILL: status " << status;
}

}  // namespace countersd::stopped_child

#endif  // COUNTERSD_TESTS_SHARED_STOPPED_CHILD_H_
