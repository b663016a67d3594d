#include "server/write_session.h"

#include "absl/strings/str_cat.h"
#include "shared/coding.h"
#include "shared/key_hash.h"
#include "shared/limits.h"

namespace countersd {

using counters::v1::IncrementRequest;

namespace {
std::string& FingerprintBuffer() {
  static thread_local std::string buffer;
  buffer.clear();
  return buffer;
}
}  // namespace

RequestFingerprint::RequestFingerprint(char kind) : bytes_(FingerprintBuffer()) {
  bytes_.push_back(kind);
}

RequestFingerprint& RequestFingerprint::Key(std::string_view key) {
  char len[2];
  EncodeFixed16(len, static_cast<uint16_t>(key.size()));
  bytes_.append(len, 2);
  bytes_.append(key);
  return *this;
}

RequestFingerprint& RequestFingerprint::Int(int64_t v) {
  char buf[8];
  EncodeFixed64(buf, static_cast<uint64_t>(v));
  bytes_.append(buf, 8);
  return *this;
}

uint64_t RequestFingerprint::Hash() const { return HashKey(bytes_); }

uint64_t FingerprintOf(const IncrementRequest& req) {
  return RequestFingerprint('I').Key(req.key()).Int(req.has_delta() ? req.delta() : 1).Hash();
}

uint64_t FingerprintOf(const google::protobuf::RepeatedPtrField<IncrementRequest>& increments) {
  RequestFingerprint f('B');
  for (const IncrementRequest& inc : increments) {
    f.Key(inc.key()).Int(inc.has_delta() ? inc.delta() : 1);
  }
  return f.Hash();
}

uint64_t FingerprintOf(const counters::v1::SetRequest& req) {
  return RequestFingerprint('S').Key(req.key()).Int(req.value()).Hash();
}

uint64_t FingerprintOf(const counters::v1::CompareAndSetRequest& req) {
  return RequestFingerprint('C').Key(req.key()).Int(req.expected()).Int(req.value()).Hash();
}

uint64_t FingerprintOf(const counters::v1::DeleteRequest& req) {
  return RequestFingerprint('D').Key(req.key()).Hash();
}

absl::StatusOr<std::optional<SessionWrite>> SessionOf(const counters::v1::WriteOptions& options,
                                                      uint64_t fingerprint) {
  if (!HasSession(options)) return std::nullopt;
  if (options.session_id().size() != kSessionIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options.session_id is ", options.session_id().size(), " bytes; a session id is ",
        kSessionIdBytes, " random bytes (or empty, for no session)"));
  }
  if (options.sequence() == 0) {
    return absl::InvalidArgumentError(
        "options.sequence is 0; a session's writes are numbered from 1");
  }
  return SessionWrite{options.session_id(), options.sequence(), fingerprint};
}

}  // namespace countersd
