// How List pages without scanning the table
// =========================================
//
// The table is a hash table: no order to walk. Before this index every List
// page scanned every slot of the table (O(capacity) per page, O(N x
// capacity) to list N counters page by page) on the handler's only serving
// thread. Now each process that lists keeps, per region (lock stripe), the
// region's live keys sorted, each with its slot index, and a page is a k-way
// merge over the regions:
//
//  1. Refresh. For each region, load its key_set_version (acquire; layout.h,
//     RegionShared invariant 5). If the region was scanned before with that
//     same version, its sorted list is current: no key was inserted or
//     deleted since that scan began. Otherwise rescan it: copy every live
//     slot's key through the slot seqlock (ReadSlot) into the region's arena,
//     sort, and remember the version loaded before the scan. A region that
//     changes during its own rescan has a newer version by the next page, so
//     it is rescanned then; a key inserted during the scan may be missed by
//     this page (it did not exist throughout the call).
//  2. Seek. In each region's sorted list, binary-search the first key that
//     is > start_after and >= prefix.
//  3. Merge. A min-heap of one cursor per region yields keys in bytewise
//     order; the first key without the prefix ends that region (every later
//     key of it sorts after all keys with the prefix). For each key, read
//     its slot lock-free (ReadSlot) and keep it only if the slot still holds
//     that key, live: a key deleted since the scan is skipped, and the value
//     is one the counter held during the call. Stop at `limit`.
//
// What a page costs, on the serving thread: regions x log(keys per region)
// for the seek, limit x log(regions) for the merge, plus the rescans of the
// regions whose key set changed since this process last listed. What bounds
// the rescans: each region is rescanned at most once per page, at
// region_slots slot reads + a sort of its live keys (~2,200 slots for 1,000
// keys at a 1,000,000 capacity); so a page costs at most one scan of the
// table, what every page cost before, and only right after inserts or
// deletes have touched every region. Increments and Sets of existing keys do
// not change a region's key set, so a listing under an increment load
// rescans nothing. (A bound on the rescans per page, with a resumable
// merge carried in the page token, is what would cap that worst case too.)
//
// Memory: per process that lists, for each live key its bytes + 12 bytes.
#include "shared/sorted_key_index.h"

#include <algorithm>
#include <queue>

#include "shared/table_internal.h"

namespace countersd {

using table_internal::ReadSlot;
using table_internal::SlotView;

void SortedKeyIndexDeleter::operator()(SortedKeyIndex* index) const { delete index; }

SortedKeyIndex::SortedKeyIndex(const layout::RegionShared* regions, const layout::Slot* slots,
                               uint32_t region_count, uint32_t region_slots)
    : regions_(regions),
      slots_(slots),
      region_count_(region_count),
      region_slots_(region_slots),
      keys_(region_count) {}

SortedKeyIndex::PageStats SortedKeyIndex::last_page_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void SortedKeyIndex::Refresh(uint32_t r) {
  RegionKeys& rk = keys_[r];
  const uint32_t version = regions_[r].key_set_version.load(std::memory_order_acquire);
  if (rk.valid && rk.version == version) return;
  rk.arena.clear();
  rk.entries.clear();
  const layout::Slot* base = slots_ + uint64_t{r} * region_slots_;
  SlotView v;
  for (uint32_t i = 0; i < region_slots_; ++i) {
    if (table_internal::LoadState(&base[i]) != layout::kLive) continue;  // ReadSlot confirms
    if (!ReadSlot(&base[i], &v) || v.state != layout::kLive) continue;
    const std::string_view key = v.key_view();
    rk.entries.push_back(
        {static_cast<uint32_t>(rk.arena.size()), i, static_cast<uint16_t>(key.size())});
    rk.arena.append(key);
  }
  std::sort(rk.entries.begin(), rk.entries.end(),
            [&rk](const Entry& a, const Entry& b) { return rk.key(a) < rk.key(b); });
  rk.version = version;
  rk.valid = true;
  ++stats_.regions_rebuilt;
  stats_.slots_scanned += region_slots_;
}

std::vector<Counter> SortedKeyIndex::List(std::string_view prefix, std::string_view start_after,
                                          size_t limit) {
  std::vector<Counter> out;
  if (limit == 0) return out;
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = {};
  // 1. and 2.
  struct Cursor {
    uint32_t region;
    uint32_t next;  // index into the region's entries
  };
  auto key_of = [this](const Cursor& c) {
    const RegionKeys& rk = keys_[c.region];
    return rk.key(rk.entries[c.next]);
  };
  auto greater = [&key_of](const Cursor& a, const Cursor& b) { return key_of(a) > key_of(b); };
  std::vector<Cursor> heap;
  heap.reserve(region_count_);
  for (uint32_t r = 0; r < region_count_; ++r) {
    Refresh(r);
    const RegionKeys& rk = keys_[r];
    auto by_key = [&rk](const Entry& e, std::string_view k) { return rk.key(e) < k; };
    auto first = std::lower_bound(rk.entries.begin(), rk.entries.end(), prefix, by_key);
    if (!start_after.empty()) {
      auto after = std::upper_bound(
          rk.entries.begin(), rk.entries.end(), start_after,
          [&rk](std::string_view k, const Entry& e) { return k < rk.key(e); });
      first = std::max(first, after);
    }
    if (first != rk.entries.end()) {
      heap.push_back({r, static_cast<uint32_t>(first - rk.entries.begin())});
    }
  }
  std::make_heap(heap.begin(), heap.end(), greater);
  // 3.
  SlotView v;
  while (!heap.empty() && out.size() < limit) {
    std::pop_heap(heap.begin(), heap.end(), greater);
    Cursor c = heap.back();
    heap.pop_back();
    const RegionKeys& rk = keys_[c.region];
    const Entry& e = rk.entries[c.next];
    const std::string_view k = rk.key(e);
    if (k.substr(0, prefix.size()) != prefix) continue;  // this region is done
    const layout::Slot* s = slots_ + uint64_t{c.region} * region_slots_ + e.slot;
    if (ReadSlot(s, &v) && v.state == layout::kLive && v.key_view() == k &&
        (out.empty() || out.back().key != k)) {
      out.push_back(Counter{std::string(k), v.value});
    }
    if (++c.next < rk.entries.size()) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), greater);
    }
  }
  return out;
}

}  // namespace countersd
