// The write-ahead log of durable writes (WriteOptions.durable).
//
// How durable writes work
// =======================
//
// A write with durable set returns OK only once it is on stable storage,
// without every write paying for an fsync of the map:
//  1. It is applied to the live table as any write is, journaled, with its
//     regions held. There, after it read the snapshot epoch, it takes the
//     next log sequence number (TableHeader::wal_lsn, fetch_add) and stores
//     it in each region it writes (RegionShared::wal_lsn) before changing
//     anything.
//  2. Its handler appends a record of its effect (the LSN, each key's
//     delta, value or deletion, and its session's entry) to the handler's
//     own log segment, <data-dir>/durable.<handler>.<n>.wal (in the data
//     directory itself: one directory to fsync, and the one the power-loss
//     simulator models), and parks the call.
//  3. The handler's commit thread (server/group_commit.cc) writes every
//     record appended since its last turn in one pwrite and makes them
//     durable with one fdatasync: concurrent durable writes share it (group
//     commit). Then the parked calls are answered, OK; or INTERNAL when the
//     write or the sync failed: the records may be lost, the kernel may
//     have dropped the pages, so the segment is never written again (the
//     fsyncgate lesson) and the next records go to a new one.
//  4. A host crash or power loss leaves the map untrusted; the start-up
//     restores the last snapshot and replays the log on top of it
//     (ReplayWal). Exactly the records the snapshot does not hold are
//     applied: a snapshot records, for each region of the table it was
//     taken from, the region's wal_lsn in its copy (WalMarks, in the
//     snapshot's trailer), and a record's change to a key is applied iff
//     its LSN is above the mark of the key's region. Per region the marks
//     are exact: LSNs of a region are taken under its lock, and its copy
//     for the snapshot is taken under it too. A batch's regions are copied
//     at one epoch, so a batch is replayed whole or not at all.
//  5. Segments are removed once a durable snapshot holds all their
//     records: WalMarks::floor is the table's wal_lsn read before the
//     snapshot's epoch began, and since a write reads the epoch before it
//     takes its LSN, every record at or below the floor is in that
//     snapshot. The commit thread moves to a new segment when a newer
//     snapshot is durable, and removes its segments whose last LSN is at
//     or below its floor.
// A retry of a durable write that was already applied (its session's
// entry says so) cannot tell whether that first application's record
// reached the disk (its sync may have failed, or be still in flight on
// another handler): so the retry appends a record that sets each key it
// touched to its value now, read under its regions with a new LSN, and is
// answered once that record is durable.
//
// Record framing (little-endian): length (u32, of the payload) | crc32 of
// the payload (u32) | payload. Payload: lsn (u64) | ops (u16) | op x ops |
// has_session (u8) | [session id (16) | sequence (u64) | fingerprint (u64)
// | flag (u8) | values (u16) | value (i64) x values]. Op: kind (u8: 1 add,
// 2 set, 3 delete) | key_len (u16) | key | value (i64, absent for
// delete). A segment is a sequence of records; reading stops at the first
// record that is incomplete or fails its checksum (a write cut short).
#ifndef COUNTERSD_SHARED_WRITE_AHEAD_LOG_H_
#define COUNTERSD_SHARED_WRITE_AHEAD_LOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shared/session_record.h"
#include "shared/sys.h"

namespace countersd {

// What a snapshot says about the log (step 4 and 5 above).
struct WalMarks {
  uint64_t floor = 0;                // every record at or below it is in the snapshot
  std::vector<uint64_t> region_lsn;  // per region of the table it was taken from
  friend bool operator==(const WalMarks&, const WalMarks&) = default;
};

struct WalOp {
  enum Kind : uint8_t { kAdd = 1, kSet = 2, kDelete = 3 };
  Kind kind;
  std::string key;
  int64_t value = 0;  // kAdd: the delta; kSet: the value
  friend bool operator==(const WalOp&, const WalOp&) = default;
};

struct WalRecord {
  uint64_t lsn = 0;
  std::vector<WalOp> ops;
  // The session's entry the write recorded (if it had a session).
  std::optional<std::string> session_id;
  SessionRecord::Entry session_entry;
  friend bool operator==(const WalRecord&, const WalRecord&) = default;
};

// Appends one framed record to `out`.
void AppendWalRecord(std::string* out, const WalRecord& record);

// The records of a segment's bytes, up to the first that is incomplete or
// fails its checksum; `valid_bytes` (optional): where they end.
std::vector<WalRecord> ParseWalSegment(std::string_view bytes, size_t* valid_bytes = nullptr);

// A segment's name in the data directory, and whether a name is one's
// (then its handler and number).
std::string WalSegmentName(int handler, uint64_t number);
bool ParseWalSegmentName(std::string_view name, int* handler, uint64_t* number);
// The segments in `data_dir`, as paths.
std::vector<std::string> WalSegments(const std::string& data_dir);

// Every record of every segment in `data_dir`, in LSN order. Each
// segment's torn tail is ignored.
absl::StatusOr<std::vector<WalRecord>> ReadWal(const std::string& data_dir, Sys* sys = RealSys());

// One handler's open segment: appends and syncs (through Sys, so the
// power-loss simulator and fault injection see them).
class WalSegment {
 public:
  // Creates <dir>/<name> (O_EXCL, 0600) and fsyncs the directory.
  static absl::StatusOr<std::unique_ptr<WalSegment>> Create(const std::string& dir,
                                                            const std::string& name, Sys* sys);
  ~WalSegment();
  // Appends `bytes` at the end; then Sync makes everything appended
  // durable (fdatasync). After either fails, the segment must not be used.
  absl::Status Append(std::string_view bytes);
  absl::Status Sync();
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  WalSegment() = default;
  Sys* sys_ = nullptr;
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_WRITE_AHEAD_LOG_H_
