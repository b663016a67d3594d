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
#include "shared/sys.h"

namespace countersd {

struct SnapshotMetaInfo {
  uint64_t generation = 0;
  uint64_t counters = 0;
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
};

// Appends one record to `out` in the file's record format.
void AppendSnapshotRecord(std::string* out, std::string_view key, int64_t value);

class SnapshotFile {
 public:
  // Opens `path` for writing, creating it (mode 0600) if missing. `capacity`
  // sizes each half for that many counters of the longest key. An existing
  // file keeps its contents; the next generation follows its newest valid
  // one.
  static absl::StatusOr<std::unique_ptr<SnapshotFile>> OpenForWrite(const std::string& path,
                                                                    uint64_t capacity,
                                                                    Sys* sys = RealSys());
  ~SnapshotFile();

  // Writes `records` (built with AppendSnapshotRecord) holding `counters`
  // records as the next generation and makes it durable. Returns its meta.
  absl::StatusOr<SnapshotMetaInfo> Write(std::string_view records, uint64_t counters,
                                         uint64_t capacity);

  // Newest durable generation (0 if none).
  uint64_t generation() const { return generation_; }

  // ---- Reading, without a writer object (read-only, never writes). ----

  // Checks both metas and halves of the file at `path`.
  // NOT_FOUND if the file does not exist; FAILED_PRECONDITION if it is too
  // short to hold the two meta pages.
  static absl::StatusOr<std::vector<SnapshotSlotCheck>> Check(const std::string& path,
                                                              Sys* sys = RealSys());

  // Reads the newest valid snapshot: calls fn for each record and returns its
  // meta. FAILED_PRECONDITION (with the reasons of both halves) if neither is
  // valid; NOT_FOUND if the file does not exist.
  static absl::StatusOr<SnapshotMetaInfo> ReadNewest(
      const std::string& path, const std::function<void(std::string_view, int64_t)>& fn,
      Sys* sys = RealSys());

  // The same two parsers over a file image in memory (what Check and
  // ReadNewest run once the file is mapped; the fuzz targets call them).
  // Every byte of the image is untrusted. REQUIRES: image.size() >=
  // snapshot_format::kDataStart. `name` names the file in errors.
  static std::vector<SnapshotSlotCheck> CheckImage(std::string_view image);
  static absl::StatusOr<SnapshotMetaInfo> ReadNewestImage(
      std::string_view image, const std::string& name,
      const std::function<void(std::string_view, int64_t)>& fn);

 private:
  SnapshotFile() = default;
  absl::Status EnsureSize(uint64_t half_size);

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
