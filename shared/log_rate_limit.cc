#include "shared/log_rate_limit.h"

namespace countersd {

bool LogRateLimit::Admit(std::string_view key, absl::Time now, uint64_t* left_out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) it = buckets_.emplace(std::string(key), Bucket{}).first;
  Bucket& b = it->second;
  if (now - b.last < interval_) {
    ++b.refused;
    return false;
  }
  b.last = now;
  *left_out = b.refused;
  b.refused = 0;
  return true;
}

}  // namespace countersd
