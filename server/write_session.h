// A write's WriteOptions (counters.proto) as the table takes them: the
// session checked (16 bytes and a sequence from 1, or neither), and the
// request's fingerprint, so that a sequence reused for another request is
// refused rather than answered with the other request's response.
//
// The fingerprint is the key hash (shared/key_hash.h, stable across
// processes, restarts and versions: it is kept in the map file and in
// snapshots) of the request's fields in a fixed encoding: a tag for the
// kind of write ('I' Increment, 'B' IncrementBatch and a stream's message,
// which are the same write, 'S' Set, 'C' CompareAndSet, 'D' Delete), then
// each key with its length and each integer as 8 bytes. The options are
// not part of it.
#ifndef COUNTERSD_SERVER_WRITE_SESSION_H_
#define COUNTERSD_SERVER_WRITE_SESSION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "counters/v1/counters.pb.h"
#include "shared/counter_table.h"

namespace countersd {

// The fields of one request, in order, in a per-thread buffer (no
// allocation per write once it has grown): one at a time per thread.
class RequestFingerprint {
 public:
  explicit RequestFingerprint(char kind);
  RequestFingerprint& Key(std::string_view key);
  RequestFingerprint& Int(int64_t v);
  uint64_t Hash() const;

 private:
  std::string& bytes_;
};

uint64_t FingerprintOf(const counters::v1::IncrementRequest& req);
uint64_t FingerprintOf(
    const google::protobuf::RepeatedPtrField<counters::v1::IncrementRequest>& increments);
uint64_t FingerprintOf(const counters::v1::SetRequest& req);
uint64_t FingerprintOf(const counters::v1::CompareAndSetRequest& req);
uint64_t FingerprintOf(const counters::v1::DeleteRequest& req);

// The session `options` name, nullopt for none; INVALID_ARGUMENT for a
// malformed one. The SessionWrite's id points into `options`.
absl::StatusOr<std::optional<SessionWrite>> SessionOf(const counters::v1::WriteOptions& options,
                                                      uint64_t fingerprint);

// Whether the options name a session at all (cheap: the fingerprint is only
// computed when they do).
inline bool HasSession(const counters::v1::WriteOptions& options) {
  return !options.session_id().empty() || options.sequence() != 0;
}

// Whether the write is a plain one (no session, not durable): the table's
// fast paths.
inline bool IsPlainWrite(const counters::v1::WriteOptions& options) {
  return !HasSession(options) && !options.durable();
}

// The table's WriteControl of a write that is not plain: its session (with
// the fingerprint of `request`, computed only then) and durability.
template <typename Request>
absl::StatusOr<WriteControl> WriteControlOf(const counters::v1::WriteOptions& options,
                                            const Request& request) {
  WriteControl control;
  control.durable = options.durable();
  if (HasSession(options)) {
    absl::StatusOr<std::optional<SessionWrite>> session =
        SessionOf(options, FingerprintOf(request));
    if (!session.ok()) return session.status();
    control.session = **session;
  }
  return control;
}

}  // namespace countersd

#endif  // COUNTERSD_SERVER_WRITE_SESSION_H_
