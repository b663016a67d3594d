// SortedKeyIndex: a per-process, per-table cache of each region's live keys
// in sorted order, so that a List page costs in proportion to the page, not
// to the table. Internal to shared/: CounterTable::List uses it. See
// sorted_key_index.cc for how it works and what bounds a page's work.
#ifndef COUNTERSD_SHARED_SORTED_KEY_INDEX_H_
#define COUNTERSD_SHARED_SORTED_KEY_INDEX_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shared/counter_table.h"

namespace countersd {

class SortedKeyIndex {
 public:
  // Over the mapping's `regions` regions of `region_slots` slots each.
  SortedKeyIndex(const layout::RegionShared* regions, const layout::Slot* slots,
                 uint32_t region_count, uint32_t region_slots);
  SortedKeyIndex(const SortedKeyIndex&) = delete;
  SortedKeyIndex& operator=(const SortedKeyIndex&) = delete;

  // CounterTable::List's contract (counter_table.h). Thread-safe: one page
  // at a time per index (a mutex).
  std::vector<Counter> List(std::string_view prefix, std::string_view start_after, size_t limit);

  // What the last List did, for tests and measurements.
  struct PageStats {
    uint32_t regions_rebuilt = 0;
    uint64_t slots_scanned = 0;  // by the rebuilds
  };
  PageStats last_page_stats() const;

 private:
  struct Entry {
    uint32_t offset;  // of the key in the region's arena
    uint32_t slot;    // index within the region
    uint16_t len;
  };
  struct RegionKeys {
    bool valid = false;     // scanned at least once
    uint32_t version = 0;   // RegionShared::key_set_version loaded before that scan
    std::string arena;      // the keys' bytes, back to back
    std::vector<Entry> entries;  // sorted by key
    std::string_view key(const Entry& e) const { return {arena.data() + e.offset, e.len}; }
  };
  // Rescans region r if its key-set version changed since its last scan.
  // REQUIRES: mu_ held.
  void Refresh(uint32_t r);

  const layout::RegionShared* const regions_;
  const layout::Slot* const slots_;
  const uint32_t region_count_;
  const uint32_t region_slots_;
  mutable std::mutex mu_;
  std::vector<RegionKeys> keys_;  // guarded by mu_
  PageStats stats_;               // guarded by mu_
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_SORTED_KEY_INDEX_H_
