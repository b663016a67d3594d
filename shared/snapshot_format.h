// The snapshot file's format (counters.snap): a backup format, copied
// between hosts, so every integer is fixed-width little-endian (coding.h),
// written and read field by field at the offsets below, never as a struct
// in host order. The one home of these facts, for the snapshot file
// (snapshot_file.cc), counterctl inspect and the tests that damage files.
//
// File layout:
//   [meta 0: kMetaPage bytes][meta 1: kMetaPage bytes][half 0][half 1]
// A meta page (the first kMetaSize bytes of it; the rest is zero):
//   offset  size  field
//        0     8  magic "CNTRSNAP"
//        8     4  format version (kSnapshotVersion)
//       12     4  half (== generation % 2)
//       16     8  generation
//       24     8  half_size: bytes per half, the same in both metas
//       32     8  data_len: bytes of records in the half
//       40     8  counters: records in the half
//       48     8  capacity of the table it was taken from
//       56     8  unix_ns: when it was written (signed)
//       64    40  boot id of the writer's boot, NUL-padded
//      104     4  data_crc: crc32 of the half's data_len bytes
//      108     4  meta_crc: crc32 of bytes [0, 108)
// Half k starts at kDataStart + k * half_size and holds `counters` counter
// records, then (version 2) session records, then the log's marks, up to
// data_len:
//   record  := key_len (u16) | key bytes | value (i64)
//   session := id (16 bytes) | last_write_unix_ns (i64) | highest (u64) |
//              entries (u16, at most kSessionWindow) | entry x entries
//   entry   := sequence (u64) | fingerprint (u64) | flag (u8) |
//              count (u16, from 1) | value (i64) x count
//   marks   := floor (u64) | region_lsn (u64) x regions | regions (u32) |
//              "WALM"
// (write_ahead_log.h: what of the log of durable writes the snapshot holds,
// per region of the table it was taken from.)
// A session's entries have ascending sequences within kSessionWindow below
// its highest, and at most kSessionResponseValues values in all (the
// window of an exactly-once session: shared/session_table.cc). Version 1
// files (no sessions) read as version 2 with none.
#ifndef COUNTERSD_SHARED_SNAPSHOT_FORMAT_H_
#define COUNTERSD_SHARED_SNAPSHOT_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "shared/key.h"
#include "shared/limits.h"

namespace countersd::snapshot_format {

inline constexpr char kMagic[8] = {'C', 'N', 'T', 'R', 'S', 'N', 'A', 'P'};
inline constexpr uint32_t kSnapshotVersion = 2;
inline constexpr uint32_t kSnapshotVersionBeforeSessions = 1;
inline constexpr uint64_t kMetaPage = 4096;
inline constexpr uint64_t kDataStart = 2 * kMetaPage;

// Meta page field offsets.
inline constexpr size_t kMagicOffset = 0;
inline constexpr size_t kVersionOffset = 8;
inline constexpr size_t kHalfOffset = 12;
inline constexpr size_t kGenerationOffset = 16;
inline constexpr size_t kHalfSizeOffset = 24;
inline constexpr size_t kDataLenOffset = 32;
inline constexpr size_t kCountersOffset = 40;
inline constexpr size_t kCapacityOffset = 48;
inline constexpr size_t kUnixNsOffset = 56;
inline constexpr size_t kBootIdOffset = 64;
inline constexpr size_t kBootIdSize = 40;
inline constexpr size_t kDataCrcOffset = 104;
inline constexpr size_t kMetaCrcOffset = 108;
inline constexpr size_t kMetaSize = 112;

// The largest record: a key of kMaxKeyBytes.
inline constexpr uint64_t kMaxRecord = 2 + kMaxKeyBytes + 8;
// A session record's fixed part, an entry's, and the largest session.
inline constexpr uint64_t kSessionHeader = 16 + 8 + 8 + 2;
inline constexpr uint64_t kSessionEntryHeader = 8 + 8 + 1 + 2;
// The marks' tag, and the largest marks: one per region of the largest
// table (layout: at most 1,024 regions).
inline constexpr char kMarksTag[4] = {'W', 'A', 'L', 'M'};
inline constexpr uint64_t kMaxMarkRegions = 1024;
inline constexpr uint64_t kMaxMarks = 8 + kMaxMarkRegions * 8 + 4 + 4;
inline constexpr uint64_t kMaxSessionRecord =
    kSessionHeader + kSessionWindow * kSessionEntryHeader + kSessionResponseValues * 8;

}  // namespace countersd::snapshot_format

#endif  // COUNTERSD_SHARED_SNAPSHOT_FORMAT_H_
