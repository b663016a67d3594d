// At most one log line a second per key (a principal, a source line of a
// library): whatever floods the daemon with a loggable event (a client
// retrying a refused call, a stream of bad TLS handshakes or of requests
// protobuf complains about) gets a line a second, and that line says how
// many were left out since the last one.
//
// How it works: a map from key to the time of its last admitted line
// (MonotonicNow, shared/monotonic_time.h) and the count refused since,
// under a mutex. The keys are of a bounded set the caller chooses
// (principals of the auth files loaded, source lines of a library), never
// anything a client can vary freely.
#ifndef COUNTERSD_SHARED_LOG_RATE_LIMIT_H_
#define COUNTERSD_SHARED_LOG_RATE_LIMIT_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace countersd {

class LogRateLimit {
 public:
  explicit LogRateLimit(absl::Duration interval = absl::Seconds(1)) : interval_(interval) {}

  // Whether a line for `key` may be logged at `now`: true if none was less
  // than the interval before, and then *left_out is how many were refused
  // since the last one admitted. Thread-safe.
  bool Admit(std::string_view key, absl::Time now, uint64_t* left_out);

 private:
  struct Bucket {
    absl::Time last = absl::InfinitePast();
    uint64_t refused = 0;
  };
  const absl::Duration interval_;
  std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> buckets_;
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_LOG_RATE_LIMIT_H_
