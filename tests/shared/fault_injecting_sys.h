// A Sys (shared/sys.h) that fails chosen calls, for storage fault tests.
//
//   FaultInjectingSys sys;
//   sys.FailNth(SysCall::kMsync, /*n=*/1, EIO, "snapshot meta");
//   ... code under test, given &sys ...
//   EXPECT_EQ(sys.injected(), 1);
//
// How it works: every call counts, per kind, the calls whose object (the
// path, or the `what` the caller names: "snapshot data", "snapshot meta",
// the file's path) contains a rule's `match` substring. When a rule's count
// reaches its n, that call fails with the rule's errno as the real Sys
// would report it (ErrnoToStatus naming the call), without making the
// system call, and the rule is spent. Every other call goes to the real
// system. Rules with n = 0 fail every matching call from now on ("the disk
// stays full"). Thread-safe; a forked child gets a copy of the rules.
#ifndef COUNTERSD_TESTS_SHARED_FAULT_INJECTING_SYS_H_
#define COUNTERSD_TESTS_SHARED_FAULT_INJECTING_SYS_H_

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shared/sys.h"

namespace countersd {

enum class SysCall {
  kOpen,
  kClose,
  kFstat,
  kFtruncate,
  kPwrite,
  kMmap,
  kMunmap,
  kMsync,
  kFsync,
  kFsyncDir,
  kRename,
  kUnlink,
  kFallocate,
};
// "open", "msync", ...: for test names and messages.
std::string_view SysCallName(SysCall call);

class FaultInjectingSys : public Sys {
 public:
  // Fails the n-th call (1-based, counted from now) of `call` whose object
  // contains `match` ("" matches all) with `err` (ENOSPC, EIO, EROFS...).
  // n = 0: every such call from now on.
  void FailNth(SysCall call, int n, int err, std::string match = "");
  // Drops every rule that has not fired (the disk has room again).
  void Clear();
  // Calls failed so far.
  int injected() const;
  // Calls of `call` whose object contains `match`, failed or not, so far.
  int calls(SysCall call, std::string_view match = "") const;

  absl::StatusOr<int> Open(const std::string& path, int flags, mode_t mode) override;
  absl::Status Close(int fd) override;
  absl::Status Fstat(int fd, struct stat* st, std::string_view what) override;
  absl::Status Ftruncate(int fd, off_t size, std::string_view what) override;
  absl::Status Pwrite(int fd, const void* buf, size_t len, off_t offset,
                      std::string_view what) override;
  absl::StatusOr<void*> Mmap(size_t len, int prot, int flags, int fd,
                             std::string_view what) override;
  absl::Status Munmap(void* addr, size_t len) override;
  absl::Status Msync(void* addr, size_t len, std::string_view what) override;
  absl::Status Fsync(int fd, std::string_view what) override;
  absl::Status FsyncDir(const std::string& dir) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Unlink(const std::string& path) override;
  absl::Status Fallocate(int fd, off_t offset, off_t len, std::string_view what) override;

 private:
  struct Rule {
    SysCall call;
    int n;  // 0: every matching call
    int err;
    std::string match;
    int seen = 0;
    bool spent = false;
  };
  struct Seen {
    SysCall call;
    std::string object;
  };
  // The errno to fail this call with, or 0 to make it. Records the call.
  int Decide(SysCall call, std::string_view object);
  absl::Status Injected(int err, SysCall call, std::string_view object);

  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  std::vector<Seen> seen_;
  int injected_ = 0;
};

}  // namespace countersd

#endif  // COUNTERSD_TESTS_SHARED_FAULT_INJECTING_SYS_H_
