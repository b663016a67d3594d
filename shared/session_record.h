// One exactly-once session as a snapshot holds it (snapshot_format.h) and
// as a restore puts it back (CounterTable::RestoreSession): the session's
// id, when it last wrote, the highest sequence it applied, and the writes
// its window still remembers with their responses (layout.h, SessionSlot).
#ifndef COUNTERSD_SHARED_SESSION_RECORD_H_
#define COUNTERSD_SHARED_SESSION_RECORD_H_

#include <cstdint>
#include <string>
#include <vector>

namespace countersd {

struct SessionRecord {
  std::string id;  // kSessionIdBytes
  int64_t last_write_unix_ns = 0;
  uint64_t highest = 0;
  struct Entry {
    uint64_t sequence = 0;
    uint64_t fingerprint = 0;
    bool flag = false;
    std::vector<int64_t> values;  // 1 to kSessionResponseValues
    friend bool operator==(const Entry&, const Entry&) = default;
  };
  // Ascending sequences, each within the window below `highest`; their
  // values together at most kSessionResponseValues.
  std::vector<Entry> entries;
  friend bool operator==(const SessionRecord&, const SessionRecord&) = default;
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_SESSION_RECORD_H_
