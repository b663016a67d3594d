// A real full disk for storage tests: a 1 MiB tmpfs mounted over the test's
// temporary directory (root only; the tests are skipped otherwise), and a
// forked child to run code that might take SIGBUS there.
#ifndef COUNTERSD_TESTS_SHARED_FULL_DISK_H_
#define COUNTERSD_TESTS_SHARED_FULL_DISK_H_

#include <errno.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "tests/shared/table_fixture.h"

namespace countersd {

class FullDisk : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs: " << strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    TempDirTest::TearDown();
  }
  bool mounted_ = false;
};

// Runs `body` in a child process and returns its wait status, so that a
// SIGBUS fails the test instead of killing the test binary.
template <typename Fn>
int InChild(Fn body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace countersd

#endif  // COUNTERSD_TESTS_SHARED_FULL_DISK_H_
