// A small tmpfs mounted over a new temporary directory, for tests that need
// a real full disk: mount(2) as root (the test skips itself otherwise),
// resized with Resize (mount -o remount,size=...), unmounted and removed by
// the destructor.
#ifndef COUNTERSD_TESTS_E2E_SCOPED_TMPFS_H_
#define COUNTERSD_TESTS_E2E_SCOPED_TMPFS_H_

#include <errno.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {

class ScopedTmpfs {
 public:
  // Mounts a tmpfs of `size` ("8m") over a new directory; mounted() says
  // whether it worked, error() why not.
  explicit ScopedTmpfs(const std::string& size) {
    if (geteuid() != 0) {
      error_ = "mounting a tmpfs needs root";
      return;
    }
    if (mount("tmpfs", dir_.path().c_str(), "tmpfs", 0,
              absl::StrCat("size=", size, ",mode=0700").c_str()) != 0) {
      error_ = absl::StrCat("mount tmpfs: ", std::strerror(errno));
      return;
    }
    mounted_ = true;
  }
  ~ScopedTmpfs() {
    if (mounted_) umount2(dir_.path().c_str(), MNT_DETACH);
  }
  ScopedTmpfs(const ScopedTmpfs&) = delete;
  ScopedTmpfs& operator=(const ScopedTmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return dir_.path(); }
  // Gives the file system `size` bytes ("32m"): frees a full disk.
  bool Resize(const std::string& size) {
    return mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_REMOUNT,
                 absl::StrCat("size=", size, ",mode=0700").c_str()) == 0;
  }

 private:
  ScopedTempDir dir_;
  bool mounted_ = false;
  std::string error_;
};

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_E2E_SCOPED_TMPFS_H_
