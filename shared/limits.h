// countersd's limits: the one home of each number that the server's flags,
// their --help text, the API, the client and the tests check against. The
// table's are derived from the layout that imposes them (layout.h), so a
// layout change moves them.
#ifndef COUNTERSD_SHARED_LIMITS_H_
#define COUNTERSD_SHARED_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "shared/key.h"

namespace countersd {

// Largest table a map file can describe: slot indices and region counts are
// 32-bit in the layout, and 1<<30 counters keep every offset well inside it.
inline constexpr uint64_t kMaxCapacity = uint64_t{1} << 30;

// Largest atomic batch: the capacity of one undo journal in the mapping.
inline constexpr size_t kMaxBatchOps = 1000;

// Processes that can hold a stats slot in the mapping at once.
inline constexpr size_t kProcessSlots = 64;

// Processes that can be attached to the live table at once (local attach,
// client/local/): one attach slot each in the mapping (layout.h,
// AttachSlot). Attach slots are separate from process slots: attachers
// are not the supervisor's children and are many more.
inline constexpr size_t kAttachSlots = 1024;

// Handlers that can run at once: every process slot but the aggregator's,
// and one spare for a handler respawned before its predecessor's slot is
// freed.
inline constexpr int kMaxHandlers = static_cast<int>(kProcessSlots) - 2;

// Exactly-once sessions (WriteOptions, counters.proto; session_table.cc).
// A session id's bytes; the window of sequences each session remembers
// below its highest applied one; the response values it keeps for them (a
// batch of n increments uses n); and the places for sessions in the map
// file, the largest --sessions-max (its default is in server/config.cc).
inline constexpr size_t kSessionIdBytes = 16;
inline constexpr uint64_t kSessionWindow = 64;
inline constexpr size_t kSessionResponseValues = 1024;
inline constexpr size_t kSessionSlots = 1024;
static_assert(kMaxBatchOps <= kSessionResponseValues, "a batch's response fits a session");

// List pages (the API's contract, counters.proto): the size of a page when
// the request names none, and the largest page a server returns.
inline constexpr int kDefaultListPageSize = 100;
inline constexpr int kMaxListPageSize = 1000;

}  // namespace countersd

#endif  // COUNTERSD_SHARED_LIMITS_H_
