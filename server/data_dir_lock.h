// The data directory's lock: one daemon per directory. See data_dir_lock.cc.
#ifndef COUNTERSD_SERVER_DATA_DIR_LOCK_H_
#define COUNTERSD_SERVER_DATA_DIR_LOCK_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace countersd {

// Holds an exclusive flock on <data-dir>/LOCK for as long as it lives (and,
// through the inherited file description, for as long as any child forked
// meanwhile lives). Move-only.
class DataDirLock {
 public:
  // Creates `dir` if missing (mode 0700; its parents as needed), or refuses
  // one that is not a directory or that other users can write
  // (data_dir_permissions.h); then takes the lock and writes `self` into
  // the file. FAILED_PRECONDITION naming the holder's pid if another daemon
  // holds it; other errors name the failed call.
  static absl::StatusOr<DataDirLock> Acquire(const std::string& dir, pid_t self);

  DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_DATA_DIR_LOCK_H_
