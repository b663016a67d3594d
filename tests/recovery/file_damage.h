// Reading and damaging a stopped daemon's data directory the way a host
// crash, a torn write or bit rot would: rewrite the live map's boot id, flip
// bytes, truncate. Offsets come from the on-disk layouts in shared/layout.h
// (the map) and shared/snapshot_file.h (the snapshot file), never from
// guesses.
//
// REQUIRES for every function that writes: no daemon runs on the directory
// (Daemon::KillAll() returned), so nothing else writes these files.
#ifndef COUNTERSD_TESTS_RECOVERY_FILE_DAMAGE_H_
#define COUNTERSD_TESTS_RECOVERY_FILE_DAMAGE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shared/data_dir.h"  // the file names: kMapFile, kSnapshotFile, ...

namespace countersd::testing {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
// Overwrites bytes at `offset` (which must lie inside the file).
absl::Status WriteAt(const std::string& path, uint64_t offset, const std::string& bytes);
// XORs the byte at `offset` with 0xFF.
absl::Status FlipByte(const std::string& path, uint64_t offset);
absl::Status Truncate(const std::string& path, uint64_t size);

// Names of the entries of `dir` (no "." and ".."), sorted.
std::vector<std::string> DirEntries(const std::string& dir);
// Those entries whose name starts with `prefix`.
std::vector<std::string> DirEntriesWithPrefix(const std::string& dir, const std::string& prefix);
// name -> contents of every regular file in `dir`.
std::map<std::string, std::string> DirContents(const std::string& dir);

// ---- The live map (layout::TableHeader). ----

// The boot id recorded in the map's header.
absl::StatusOr<std::string> MapBootId(const std::string& map_path);
// Rewrites the header's boot id (NUL-padded to the field's size) and the
// checksum of the header's trust fields, as an owner on that boot would.
absl::Status SetMapBootId(const std::string& map_path, const std::string& boot_id);
// A boot id that differs from this boot's (so the map looks like it survived
// a reboot: a host crash).
absl::StatusOr<std::string> OtherBootId();
// Offset of the header's magic, and of a byte covered by the header checksum
// that nothing but the checksum validates (created_unix_ns).
uint64_t MapMagicOffset();
uint64_t MapChecksummedByteOffset();
// Offset of the header's clean-shutdown flag (a uint32_t, 1 = clean), one of
// the trust fields under their own checksum.
uint64_t MapCleanShutdownOffset();

// ---- The snapshot file. ----

struct SnapshotHalf {
  int index = 0;  // 0 or 1
  uint64_t generation = 0;
  uint64_t meta_offset = 0;  // its meta page
  uint64_t data_offset = 0;  // its records
  uint64_t bytes = 0;        // length of its records
};
// The valid halves of the snapshot file at `path`, newest first (checked with
// SnapshotFile::Check; a half's offset is 2 meta pages + index * half size,
// half size being what is left of the file after the meta pages, halved).
absl::StatusOr<std::vector<SnapshotHalf>> ValidSnapshotHalves(const std::string& path);

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_RECOVERY_FILE_DAMAGE_H_
