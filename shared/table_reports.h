// What the counter table reports about itself (counter_table.h): the
// header as found (TableInfo), the processes' stats slots and connection
// counts, what a repair did (RecoveryReport, OpenReport), the attached
// processes and their calls. Plain values, copied out of the mapping.
#ifndef COUNTERSD_SHARED_TABLE_REPORTS_H_
#define COUNTERSD_SHARED_TABLE_REPORTS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace countersd {

// Who claimed a process stats slot (stored in the mapping; 0 is a free slot).
enum class ProcessRole : uint32_t { kHandler = 1, kAggregator = 2 };

struct Counter {
  std::string key;
  int64_t value;
  friend bool operator==(const Counter&, const Counter&) = default;
};

// What the header says, for logs, GetStats and `counterctl inspect`.
struct TableInfo {
  uint32_t layout_version;
  uint64_t capacity;
  uint64_t live;  // counters that exist
  uint32_t regions;
  uint32_t region_slots;
  uint64_t file_size;
  int64_t created_unix_ns;
  bool clean_shutdown;  // as found when opened
  // As found when opened: the boot during which the file's last owner
  // opened it; empty when `copied`.
  std::string boot_id;
  // The file is not the one its last owner opened (another st_dev or
  // st_ino: a copy, or moved to another file system). Its boot id then
  // vouches for nothing: that boot's page cache held the original.
  bool copied = false;
};

// A handler's connection counts (layout.h, ProcessSlot invariant 4): what
// its ConnectionGate counted since the handler started.
struct ConnectionCounts {
  uint64_t accepted = 0;            // handed to gRPC
  uint64_t refused = 0;             // over --max-connections: reset at accept
  uint64_t handshake_timeouts = 0;  // closed: no HTTP/2 preface in time
  uint32_t open = 0;                // now: handshaking, or handed over and not closed
  friend bool operator==(const ConnectionCounts&, const ConnectionCounts&) = default;
};

// Statistics of one process that claimed a ProcessSlot.
struct ProcessStats {
  pid_t pid;
  ProcessRole role;
  bool ready;
  ConnectionCounts connections;  // zero but for handlers
};

// What RecoverDeadProcess did.
struct RecoveryReport {
  int stripes_released = 0;
  int inserts_rolled_back = 0;
  int batches_rolled_back = 0;
  int journals_freed = 0;
  bool stats_slot_freed = false;
  bool did_anything() const {
    return stripes_released || inserts_rolled_back || batches_rolled_back || journals_freed ||
           stats_slot_freed;
  }
};

// One attach slot in use (GetStats, /metrics, counterctl stats).
struct AttacherStats {
  uint32_t slot;
  pid_t pid;  // as the attacher sees itself, in its own pid namespace
  uint32_t uid;
  bool current;  // attached to this daemon's incarnation (else refused at its next write)
  int64_t attached_unix_ns;
  uint64_t calls[7];  // by layout::AttachOp
  uint64_t failures;
};

// The calls of the attach slots freed since Open (layout.h,
// RetiredAttachCalls), by layout::AttachOp.
struct AttachCallTotals {
  uint64_t calls[7] = {};
  uint64_t failures = 0;
};

// What RecoverDeadAttachers did for one dead attacher.
struct AttacherRecovery {
  uint32_t slot;
  pid_t pid;  // as it saw itself
  RecoveryReport report;
};

// What Open found and repaired.
struct OpenReport {
  int batches_rolled_back = 0;
  int inserts_rolled_back = 0;
  uint64_t tombstones_reclaimed = 0;
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_TABLE_REPORTS_H_
