// SnapshotFile: durable point-in-time copies of the counter table, double
// buffered like LMDB's two meta pages. The format (fixed-width
// little-endian, portable between hosts) is in snapshot_format.h.
//
// Snapshot generation g lives in half g % 2 and is described by meta g % 2.
//
// Write order (redis rdbSave / LMDB commit order):
//   1. copy the records into half g % 2 (the half of generation g-2, never
//      the one the newest valid meta describes);
//   2. msync(MS_SYNC) that range;
//   3. write meta g % 2 (generation, length, count, crc32 of the data, crc32
//      of the meta itself) and msync its page.
// A crash before 3 completes leaves meta (g-1) % 2 and its half untouched,
// so the previous snapshot stays valid: a reader takes the valid meta with
// the highest generation whose data checksum matches.
//
// An msync failure fails that snapshot and is returned, never retried as if
// nothing happened: the kernel may have dropped the dirty pages.
//
// Storage is allocated before it is promised: every block of the file is
// allocated (posix_fallocate) when it is made and when a writer opens it,
// so a store into the mapping can never take SIGBUS on a full disk; a full
// disk fails OpenForWrite with RESOURCE_EXHAUSTED instead.
//
// The file follows the table's capacity. OpenForWrite makes a new file when
// there is none, when the one found holds no valid snapshot (it is set
// aside first, never overwritten), or when its halves are too small for the
// capacity (after a restore or a larger --capacity). The new file is built
// under <path>.new: sized, allocated, given the old file's newest snapshot
// (the same generation, records and meta fields, written and msynced in
// the usual order), fsynced, then renamed over <path> and the directory
// fsynced. So at every instant <path> is either the old file or a complete
// new one holding the same newest snapshot: the old one is kept until the
// new one holds a valid snapshot.
#ifndef COUNTERSD_SHARED_SNAPSHOT_FILE_H_
#define COUNTERSD_SHARED_SNAPSHOT_FILE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shared/session_record.h"
#include "shared/sys.h"
#include "shared/write_ahead_log.h"

namespace countersd {

struct SnapshotMetaInfo {
  uint64_t generation = 0;
  uint64_t counters = 0;
  uint64_t sessions = 0;  // session records (Write's count; ReadNewest's parse)
  WalMarks wal_marks;     // ReadNewest's: what of the log it holds (none: version 1)
  uint64_t bytes = 0;     // bytes of record data
  uint64_t capacity = 0;  // capacity of the table it was taken from
  int64_t unix_ns = 0;    // when it was written
  std::string boot_id;    // boot during which it was written
};

// Result of validating one meta page and its half.
struct SnapshotSlotCheck {
  int index = 0;          // 0 or 1
  absl::Status status;    // OK, or why that meta/half is invalid
  SnapshotMetaInfo meta;  // filled when the meta page itself is valid
  bool never_written = false;  // the meta page is all zero (not damage)
};

// What OpenForWrite found and did, for the caller's log.
struct SnapshotOpenReport {
  bool created = false;          // a new file was made (and renamed into place)
  std::string set_aside_as;      // the invalid file found was renamed to this ("" if none)
  std::string invalid_reason;    // why it was invalid
  uint64_t grown_from_bytes = 0;  // nonzero: the file found was this size, too small
  uint64_t carried_generation = 0;  // the generation copied into the new file (0: none)
};

// Appends one record to `out` in the file's record format.
void AppendSnapshotRecord(std::string* out, std::string_view key, int64_t value);
// Appends one session record (after every counter record).
void AppendSessionRecord(std::string* out, const SessionRecord& session);
// The log's marks as the file holds them (snapshot_format.h), after the
// sessions: Write appends them.
void AppendWalMarks(std::string* out, const WalMarks& marks);

class SnapshotFile {
 public:
  // Opens `path` for writing, sized so that each half holds `capacity`
  // counters of the longest key: creates it (mode 0600) if missing, sets an
  // invalid one aside (<path>.corrupt-<UTC time>) and makes a new one, and
  // replaces one whose halves are too small by a larger one holding the
  // same newest snapshot (see the top of this file). A file that fits keeps
  // its contents. Every block is allocated. The next generation follows the
  // newest valid one. `report` (optional) says what was done.
  // Errors name the failed call (RESOURCE_EXHAUSTED for a full disk); on
  // any error the file at `path` holds what it held before (or is set
  // aside, when the report says so) and <path>.new is gone.
  static absl::StatusOr<std::unique_ptr<SnapshotFile>> OpenForWrite(
      const std::string& path, uint64_t capacity, Sys* sys = RealSys(),
      SnapshotOpenReport* report = nullptr);
  ~SnapshotFile();

  // Writes `records` (built with AppendSnapshotRecord, then
  // AppendSessionRecord) holding `counters` counter and `sessions` session
  // records, and then `marks`, as the next generation and makes it
  // durable. Returns its meta.
  absl::StatusOr<SnapshotMetaInfo> Write(std::string_view records, uint64_t counters,
                                         uint64_t capacity, uint64_t sessions = 0,
                                         const WalMarks& marks = {});

  // Newest durable generation (0 if none).
  uint64_t generation() const { return generation_; }

  // ---- Reading, without a writer object (read-only, never writes). ----

  // Checks both metas and halves of the file at `path`.
  // NOT_FOUND if the file does not exist; FAILED_PRECONDITION if it is too
  // short to hold the two meta pages.
  static absl::StatusOr<std::vector<SnapshotSlotCheck>> Check(const std::string& path,
                                                              Sys* sys = RealSys());

  // Reads the newest valid snapshot: calls fn for each counter record, then
  // session_fn (if given) for each session record, and returns its meta.
  // FAILED_PRECONDITION (with the reasons of both halves) if neither is
  // valid; NOT_FOUND if the file does not exist; DATA_LOSS for records that
  // do not parse.
  using SessionFn = std::function<void(const SessionRecord&)>;
  static absl::StatusOr<SnapshotMetaInfo> ReadNewest(
      const std::string& path, const std::function<void(std::string_view, int64_t)>& fn,
      Sys* sys = RealSys(), const SessionFn& session_fn = nullptr);

  // The same two parsers over a file image in memory (what Check and
  // ReadNewest run once the file is mapped; the fuzz targets call them).
  // Every byte of the image is untrusted. REQUIRES: image.size() >=
  // snapshot_format::kDataStart. `name` names the file in errors.
  static std::vector<SnapshotSlotCheck> CheckImage(std::string_view image);
  static absl::StatusOr<SnapshotMetaInfo> ReadNewestImage(
      std::string_view image, const std::string& name,
      const std::function<void(std::string_view, int64_t)>& fn,
      const SessionFn& session_fn = nullptr);

 private:
  SnapshotFile() = default;

  Sys* sys_ = nullptr;
  std::string path_;
  int fd_ = -1;
  char* base_ = nullptr;
  size_t size_ = 0;
  uint64_t half_size_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_SNAPSHOT_FILE_H_
