// LatencyHistogram: a log-linear histogram of non-negative integers
// (nanoseconds), in the manner of HdrHistogram.
//
// Values below 2^kSubBits are counted exactly. Above that, each power of two
// [2^e, 2^(e+1)) is split into 2^kSubBits equal buckets, so a bucket's width
// is at most 1/2^kSubBits (1.6%) of the values in it. Percentile() returns
// the upper edge of the bucket holding the requested rank (clamped to the
// exact maximum): never below the true percentile, at most 1.6% above it.
//
// Record is a few instructions and never allocates. Not thread-safe: give
// each thread (or each in-flight call) its own histogram and Merge them.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_LATENCY_HISTOGRAM_H_
#define COUNTERSD_CLIENT_COUNTERCTL_LATENCY_HISTOGRAM_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace countersd::ctl {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr size_t kBuckets = kSub + (64 - kSubBits) * kSub;

  void Record(uint64_t v) {
    ++counts_[Index(v)];
    ++count_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }

  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ ? max_ : 0; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }

  // The value at or below which `q` (0 < q <= 1) of the recorded values lie,
  // rounded up to the bucket edge as described above. 0 when empty.
  uint64_t Percentile(double q) const;

  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    const int e = 63 - std::countl_zero(v);  // 2^e <= v < 2^(e+1), e >= kSubBits
    const uint64_t sub = (v >> (e - kSubBits)) & (kSub - 1);
    return static_cast<size_t>(kSub + (e - kSubBits) * kSub + sub);
  }
  // Largest value that maps to bucket `i`.
  static uint64_t UpperEdge(size_t i);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_LATENCY_HISTOGRAM_H_
