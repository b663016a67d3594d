// A power-loss simulator for one data directory: a Sys that records what is
// durable, and the crash images a power loss could leave.
//
// How it works:
//  1. PowerLossSys stands behind every call the code under test makes on the
//     directory's files (shared/sys.h). It passes each call to the kernel,
//     except the flushes, which it only records: the real page cache is the
//     "current" state, and the simulated disk is a durable image per file
//     (inode) plus the directory's durable names.
//  2. Fsync(fd) makes the file's current contents and size its durable
//     image. Msync(addr, len) makes the pages of that range durable, and the
//     file's size (msync(MS_SYNC) is fdatasync of the range on Linux: the
//     size is metadata needed to read the data back). Sys has no fdatasync.
//  3. A create (Open with O_CREAT of a missing name), Rename or Unlink is a
//     pending directory operation until FsyncDir of the directory makes all
//     of them durable.
//  4. Stores into a MAP_SHARED mapping make no call, so nothing is recorded
//     as it is written: at a crash point, Capture reads every file (pread on
//     the simulator's own descriptor; Linux keeps a MAP_SHARED mapping and
//     read(2) coherent) and compares it with its durable image page by page.
//     The pages that differ are the dirty ones.
//  5. A crash point is the entry of every call that can change the disk
//     (Open, Ftruncate, Fallocate, Pwrite, Msync, Fsync, FsyncDir, Rename,
//     Unlink), plus every point at which the test calls CrashPoint. The
//     handler the test installs runs there, before the call proceeds.
//  6. A crash image (Materialize) is: the durable names with a prefix of the
//     pending directory operations applied; for each named file its durable
//     image, cut or extended to its durable or its current size, with each
//     dirty page kept old, written new, or torn: each of its 512-byte
//     sectors old or new.
//
// The model's assumptions (as CrashMonkey and ALICE state theirs):
//  A1. A 512-byte sector is written atomically: it holds its old or its new
//      bytes, never a mix. A 4 KiB page is not: it may be torn at sector
//      boundaries. Anything wider than a page has no atomicity at all.
//  A2. Dirty pages reach the disk in any order, any subset of them, until a
//      flush that covers them returns. A flush that returned made its range
//      durable (no lying disk cache, no lost flush: fsyncgate's dropped
//      pages are the fault-injection tests' subject, not this one's).
//  A3. A file's durable size is its size at its last Fsync or Msync; a
//      power loss leaves the durable size or the current one. Bytes past
//      the old durable size read as zeros unless their page was written.
//  A4. The directory is POSIX-strict, stricter than ext4 or XFS: a file's
//      fsync does not make its own name durable; only FsyncDir of the
//      directory does. Directory operations are atomic each and persist in
//      the order they were made (a prefix of them survives), as on a
//      journaling file system; they are not ordered with file data.
//  A5. Only the directory given to the constructor is modelled, one level,
//      regular files only; the files in it at construction are durable.
//  A6. Nothing but the process under test writes those files, and every
//      change of the directory goes through this Sys (Capture checks the
//      directory against its record and reports a change made around it).
//  A7. Pages are 4 KiB (layout::kPage and snapshot_format::kMetaPage).
//
// Not thread-safe: one thread drives the workload (the test's).
#ifndef COUNTERSD_TESTS_SHARED_POWER_LOSS_SYS_H_
#define COUNTERSD_TESTS_SHARED_POWER_LOSS_SYS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shared/sys.h"

namespace countersd::testing {

inline constexpr size_t kSimPageSize = 4096;
inline constexpr size_t kSimSectorSize = 512;
inline constexpr size_t kSimSectorsPerPage = kSimPageSize / kSimSectorSize;

// A directory operation not yet made durable by FsyncDir.
struct PendingDirOp {
  enum Kind { kCreate, kRename, kUnlink };
  Kind kind;
  std::string name;  // created, renamed from, or unlinked
  std::string to;    // kRename only
  ino_t inode = 0;   // kCreate only
  std::string Describe() const;
};

// What a power loss at one instant may leave: everything Materialize needs.
struct CrashState {
  struct File {
    std::string durable;          // the durable image (its size: the durable size)
    std::string current;          // the page cache now
    std::vector<uint64_t> dirty;  // page indices where the two differ, ascending
  };
  std::map<std::string, ino_t> durable_names;  // name -> inode
  std::vector<PendingDirOp> pending;           // in the order they were made
  std::map<ino_t, File> files;                 // every inode a name may reach
  // Empty, or what in the directory does not match the record (a change
  // made around the Sys: assumption A6 broken).
  std::string inconsistency;
  uint64_t dirty_pages() const;
};

// One choice of crash image.
struct CrashChoice {
  size_t dir_ops = 0;  // how many pending directory operations survive
  struct FileChoice {
    bool current_size = false;
    std::vector<uint8_t> sectors;  // per dirty page: bit s set = sector s is new
  };
  std::map<ino_t, FileChoice> files;
  std::string Describe(const CrashState& state) const;
};

// The files of one crash image: name -> contents.
using CrashImage = std::map<std::string, std::string>;

CrashImage Materialize(const CrashState& state, const CrashChoice& choice);

// The choices tried at one crash point. Deterministic for a given seed:
//  - nothing since the last flushes survives, with each prefix of the
//    pending directory operations; and everything survives, likewise;
//  - for each file, only its dirty pages survive, and all but its do;
//  - every whole-page combination, when there are at most 4 dirty pages;
//  - `random` more, each dirty page old, new or torn (each sector drawn)
//    with odds 1/3, a random size and a random prefix of directory
//    operations. The space is far too big to enumerate (3 + 254 states per
//    dirty page), so these are a seeded sample.
std::vector<CrashChoice> CrashChoicesFor(const CrashState& state, uint64_t seed, int random);

// Writes `image` into the empty directory `dir` (pages of zeros as holes).
absl::Status WriteCrashImage(const CrashImage& image, const std::string& dir);

class PowerLossSys : public Sys {
 public:
  // Models `dir` (which must exist); every regular file in it now is taken
  // as durable. BootId returns `boot_id`.
  PowerLossSys(std::string dir, std::string boot_id);
  ~PowerLossSys() override;
  PowerLossSys(const PowerLossSys&) = delete;
  PowerLossSys& operator=(const PowerLossSys&) = delete;

  // Runs at every crash point with its name (e.g. "msync(snapshot meta)").
  // Not re-entered: calls made by the handler itself are no crash points.
  void SetCrashPointHandler(std::function<void(std::string_view where)> handler);
  void CrashPoint(std::string_view where);
  // Takes everything as durable now: each file's contents and size, and the
  // directory's names (as if every file and the directory were fsynced).
  void TakeAllAsDurable();
  // What a power loss now may leave.
  CrashState Capture() const;
  int crash_points() const { return crash_points_; }

  absl::StatusOr<int> Open(const std::string& path, int flags, mode_t mode) override;
  absl::Status Close(int fd) override;
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
  absl::StatusOr<std::string> BootId() override { return boot_id_; }

 private:
  struct Inode {
    int read_fd = -1;  // the simulator's own, O_RDONLY: reads the page cache
    std::string durable;
  };
  struct Mapping {
    size_t len;
    ino_t inode;
  };
  // The name inside the modelled directory, or "" for a path outside it.
  std::string NameIn(const std::string& path) const;
  // Starts tracking the inode behind `fd` (durable image: `durable`).
  void Track(int fd, ino_t inode, std::string durable);
  std::string ReadCurrent(ino_t inode) const;
  std::map<std::string, ino_t> CurrentNames() const;  // durable + pending
  void ForgetUnreachable();

  const std::string dir_;
  const std::string boot_id_;
  std::function<void(std::string_view)> handler_;
  bool in_handler_ = false;
  int crash_points_ = 0;
  std::map<ino_t, Inode> inodes_;
  std::map<int, ino_t> fds_;  // the code under test's descriptors
  std::map<const char*, Mapping> mappings_;
  std::map<std::string, ino_t> durable_names_;
  std::vector<PendingDirOp> pending_;
};

// The Sys that start-up recovery runs through on a crash image: a later
// boot (BootId returns `boot_id`), whose flushes do nothing, since no crash
// is simulated after it. Every other call is the kernel's.
class RebootedSys : public Sys {
 public:
  explicit RebootedSys(std::string boot_id) : boot_id_(std::move(boot_id)) {}
  absl::Status Msync(void*, size_t, std::string_view) override { return absl::OkStatus(); }
  absl::Status Fsync(int, std::string_view) override { return absl::OkStatus(); }
  absl::Status FsyncDir(const std::string&) override { return absl::OkStatus(); }
  absl::StatusOr<std::string> BootId() override { return boot_id_; }

 private:
  const std::string boot_id_;
};

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_SHARED_POWER_LOSS_SYS_H_
