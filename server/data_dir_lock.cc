// The data directory's lock (step 2 of the supervisor's start): one daemon
// per data directory.
//
//  1. Create the directory if missing (mode 0700), or refuse one that is not
//     a directory or that other users can write (data_dir_permissions.h);
//     warn when it is another user's.
//  2. Open <dir>/LOCK (no links, regular file only: OpenDataFile) and take
//     an exclusive, non-blocking flock. Held by another process: refuse,
//     naming the pid written in the file, and saying when that pid has
//     exited but its children still hold the lock (they die with it:
//     PR_SET_PDEATHSIG, supervisor.cc).
//  3. Write our pid into the file, for the message of step 2.
// The lock's file description is inherited by every child forked later, so
// the lock is held until the last process of this daemon exits: a new
// daemon can never open the table while an old child still uses it.
#include "server/data_dir_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/data_dir_permissions.h"
#include "shared/data_dir.h"
#include "shared/log.h"
#include "shared/status_macros.h"
#include "shared/sys.h"

namespace countersd {

absl::StatusOr<DataDirLock> DataDirLock::Acquire(const std::string& dir, pid_t self) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoToStatus(errno, absl::StrCat("stat(", dir, ")"));
    std::error_code ec;
    std::filesystem::path parent = std::filesystem::path(dir).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, absl::StrCat("mkdir(", dir, ")"));
    }
    Log(LogLevel::kInfo, "created data directory", {{"data_dir", dir}});
  } else if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("--data-dir=", dir, " is not a directory"));
  } else {
    RETURN_IF_ERROR(CheckDataDirPermissions(dir, st, geteuid(), getegid()));
  }

  const std::string lock_path = absl::StrCat(dir, "/", kLockFile);
  ASSIGN_OR_RETURN(int fd, OpenDataFile(RealSys(), lock_path, O_RDWR | O_CREAT, 0600));
  DataDirLock lock(fd);  // closes fd on every return below but the last
  if (flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoToStatus(errno, absl::StrCat("flock(", lock_path, ")"));
    char buf[32] = {};
    ssize_t n = pread(lock.fd_, buf, sizeof buf - 1, 0);
    int64_t holder = 0;
    std::string who = "another countersd";
    if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(buf), &holder) && holder > 0) {
      who = absl::StrCat("another countersd (pid ", holder, " per ", lock_path, ")");
      if (kill(static_cast<pid_t>(holder), 0) != 0 && errno == ESRCH) {
        absl::StrAppend(&who,
                        "; that pid has exited, but its child processes still hold the lock; "
                        "they are SIGKILLed with it and should be gone in a moment");
      }
    }
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", dir, " is in use by ", who,
                     ". Stop that daemon first, or use another --data-dir."));
  }
  std::string pid = absl::StrCat(self, "\n");
  RETURN_IF_ERROR(RealSys()->Ftruncate(lock.fd_, 0, lock_path));
  RETURN_IF_ERROR(RealSys()->Pwrite(lock.fd_, pid.data(), pid.size(), 0, lock_path));
  return lock;
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) (void)RealSys()->Close(fd_);
}

}  // namespace countersd
