#include "client/counterctl/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace countersd::ctl {

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
  min_ = std::min(min_, other.min_);
}

uint64_t LatencyHistogram::UpperEdge(size_t i) {
  if (i < kSub) return i;
  const size_t e = (i - kSub) / kSub + kSubBits;
  const uint64_t sub = (i - kSub) % kSub;
  const uint64_t width = uint64_t{1} << (e - kSubBits);
  const uint64_t low = (uint64_t{1} << e) + sub * width;
  return low + (width - 1);
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank (1-based) of the value we want: the smallest r with r >= q*n.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(UpperEdge(i), max_);
  }
  return max_;
}

}  // namespace countersd::ctl
