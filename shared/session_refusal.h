// The refusals of a write's session (WriteOptions, counters.proto) that a
// client acts on: the daemon makes them (shared/session_table.cc), the
// client library reads them back (client/client.cc: an unknown session
// on a first attempt starts a new session and sends the write again). One
// definition for both, so the two cannot drift apart.
#ifndef COUNTERSD_SHARED_SESSION_REFUSAL_H_
#define COUNTERSD_SHARED_SESSION_REFUSAL_H_

#include <cstdint>

#include "absl/status/status.h"

namespace countersd {

// FAILED_PRECONDITION: the daemon does not remember the session (it was
// never seen, or was forgotten: idle over --session-ttl, or its place taken
// under --sessions-max) and `sequence` is too high to start one. The write
// was not applied.
absl::Status UnknownSessionError(uint64_t sequence);
bool IsUnknownSessionError(const absl::Status& status);

// FAILED_PRECONDITION: the session's window no longer holds `sequence`
// (it is at or below the highest applied - 64, or its response no longer
// fits). It may have been applied before; it is not applied now.
absl::Status ForgottenSequenceError(uint64_t sequence, uint64_t highest);
bool IsForgottenSequenceError(const absl::Status& status);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_SESSION_REFUSAL_H_
