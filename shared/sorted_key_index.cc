// How List pages without scanning the table
// =========================================
//
// The table is a hash table: no order to walk. Before this index every List
// page scanned every slot of the table (O(capacity) per page, O(N x
// capacity) to list N counters page by page) on the handler's serving
// thread. Now each process that lists keeps, per region (lock stripe), the
// region's live keys sorted, each with its slot index, and a page is a k-way
// merge over the regions:
//
//  1. Refresh. For each region, load its key_set_version (acquire; layout.h,
//     RegionShared invariant 5). If the region was scanned before with that
//     same version, its sorted list is current: no key was inserted or
//     deleted since that scan began. Otherwise rescan it: copy every live
//     slot's key through the slot seqlock (ReadSlot) into the region's arena,
//     sort, remember the version loaded before the scan, and stamp the
//     region with a new generation (generation_ + 1). A region that changes
//     during its own rescan has a newer version by the next page, so it is
//     rescanned then; a key inserted during the scan may be missed by this
//     page (it did not exist throughout the call).
//  2. Resume or seek. A listing pages with start_after = the last key of its
//     previous page (or, as CounterServiceImpl::DoList does, asks for one
//     key more than the page and resumes after the one before it). Where
//     each page stops, the merge's heap of cursors is saved (SavedMerge:
//     the prefix, the page's last two keys, the heap whose next pop is the
//     last key, the generation). A page whose (prefix, start_after) matches
//     a saved merge takes its heap; every region rescanned since it was
//     saved (generation stamp newer than the saved one) loses its cursor and
//     is sought again, the others' cursors still point into unchanged
//     sorted lists. Otherwise, seek: in each region's sorted list,
//     binary-search the first key that is > start_after and >= prefix.
//     At most kSavedMerges are kept, the least recently saved replaced; a
//     merge is taken out when it resumes a page, so two clients at the same
//     place do not share one.
//  3. Merge. A min-heap of one cursor per region yields keys in bytewise
//     order; the first key without the prefix ends that region (every later
//     key of it sorts after all keys with the prefix), so every key in the
//     heap has the prefix and the heap compares the 8 bytes after it as one
//     integer cached in the cursor (the rest of the key only on a tie). A key not after
//     start_after is passed over (the saved heap's next key is the previous
//     page's last one). For each other key, read its slot lock-free
//     (ReadSlot) and keep it only if the slot still holds that key, live: a
//     key deleted since the scan is skipped, and the value is one the
//     counter held during the call. The keys are taken from the merge a
//     round at a time (as many as the page still needs) and their slots
//     prefetched before any is read. Stop at `limit`, with the last key's
//     cursor put back unadvanced: that heap is the one saved.
//
// What a page costs: one acquire load of each region's version (1,024
// regions at a 1,000,000 capacity); on a resume, limit x log(regions) for
// the merge (plus a seek of each region rescanned since); on a fresh
// listing, or a resume nobody saved, also regions x log(keys per region) for
// the seek. Measured with table_bench's BM_ListPage (1,000,000 capacity,
// 20,000 keys, pages of 100+1): see the numbers in ARCHITECTURE.md's
// design choices. Plus the rescans of the regions whose key set changed
// since this process last listed: each region is rescanned at most once per
// page, at region_slots slot reads + a sort of its live keys (~2,200 slots
// for 1,000 keys at a 1,000,000 capacity); so a page costs at most one scan
// of the table, and only right after inserts or deletes have touched every
// region. Increments and Sets of existing keys do not change a region's key
// set, so a listing under an increment load rescans nothing and resumes.
// Where this runs: in a handler, on its low-priority List thread, never on
// the serving thread (server/low_priority_calls.h).
//
// Memory: per process that lists, for each live key its bytes + 12 bytes,
// plus up to kSavedMerges x regions x 32 bytes of saved heaps (1 MiB at a
// 1,000,000 capacity).
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
  rk.rebuilt_at = ++generation_;
  ++stats_.regions_rebuilt;
  stats_.slots_scanned += region_slots_;
}

bool SortedKeyIndex::Seek(uint32_t r, std::string_view prefix, std::string_view start_after,
                          Cursor* c) {
  ++stats_.regions_sought;
  const RegionKeys& rk = keys_[r];
  auto by_key = [&rk](const Entry& e, std::string_view k) { return rk.key(e) < k; };
  auto first = std::lower_bound(rk.entries.begin(), rk.entries.end(), prefix, by_key);
  if (!start_after.empty()) {
    auto after =
        std::upper_bound(rk.entries.begin(), rk.entries.end(), start_after,
                         [&rk](std::string_view k, const Entry& e) { return k < rk.key(e); });
    first = std::max(first, after);
  }
  c->region = r;
  c->next = static_cast<uint32_t>(first - rk.entries.begin());
  return Load(prefix, c);
}

bool SortedKeyIndex::Load(std::string_view prefix, Cursor* c) const {
  const RegionKeys& rk = keys_[c->region];
  if (c->next >= rk.entries.size()) return false;
  const std::string_view k = rk.key(rk.entries[c->next]);
  if (k.substr(0, prefix.size()) != prefix) return false;
  c->key = k.data();
  c->len = static_cast<uint16_t>(k.size());
  uint64_t head = 0;
  for (size_t i = prefix.size(); i < prefix.size() + 8; ++i) {
    head = head << 8 | (i < k.size() ? static_cast<unsigned char>(k[i]) : 0);
  }
  c->head = head;
  return true;
}

SortedKeyIndex::SavedMerge* SortedKeyIndex::FindSaved(std::string_view prefix,
                                                      std::string_view start_after) {
  for (SavedMerge& m : saved_) {
    if (m.used && m.prefix == prefix && (m.last == start_after || m.before_last == start_after)) {
      return &m;
    }
  }
  return nullptr;
}

std::vector<Counter> SortedKeyIndex::List(std::string_view prefix, std::string_view start_after,
                                          size_t limit) {
  std::vector<Counter> out;
  if (limit == 0) return out;
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = {};
  // Every key in the heap has the prefix, so `head` compares the bytes
  // after it; equal heads (and no NUL in keys) mean equal bytes up to
  // prefix + 8, and the rest decides.
  const size_t skip = prefix.size() + 8;
  auto greater = [skip](const Cursor& a, const Cursor& b) {
    if (a.head != b.head) return a.head > b.head;
    if (a.len <= skip || b.len <= skip) return a.len > b.len;
    return std::string_view(a.key + skip, a.len - skip) >
           std::string_view(b.key + skip, b.len - skip);
  };
  // 1.
  for (uint32_t r = 0; r < region_count_; ++r) Refresh(r);
  // 2.
  std::vector<Cursor> heap;
  Cursor c;
  if (SavedMerge* saved = FindSaved(prefix, start_after); saved != nullptr) {
    stats_.resumed = true;
    heap = std::move(saved->heap);
    saved->used = false;
    if (saved->generation != generation_) {
      const uint64_t since = saved->generation;
      std::erase_if(heap, [&](const Cursor& h) { return keys_[h.region].rebuilt_at > since; });
      for (uint32_t r = 0; r < region_count_; ++r) {
        if (keys_[r].rebuilt_at > since && Seek(r, prefix, start_after, &c)) heap.push_back(c);
      }
      std::make_heap(heap.begin(), heap.end(), greater);
    }
  } else {
    heap.reserve(region_count_);
    for (uint32_t r = 0; r < region_count_; ++r) {
      if (Seek(r, prefix, start_after, &c)) heap.push_back(c);
    }
    std::make_heap(heap.begin(), heap.end(), greater);
  }
  // 3. In rounds: (a) take from the merge the next keys after start_after,
  // as many as the page still needs, prefetching their slots, the last one
  // held back unadvanced; (b) read those slots in order, keep the live ones.
  // The slots lie anywhere in the mapping (a cache and TLB miss each, most
  // of a page's cost), so their loads overlap instead of following one
  // another.
  std::vector<Cursor> batch;
  SlotView v;
  auto slot_of = [this](const Cursor& b) {
    return slots_ + uint64_t{b.region} * region_slots_ + keys_[b.region].entries[b.next].slot;
  };
  auto advance = [&](Cursor b) {
    ++b.next;
    if (Load(prefix, &b)) {  // else this region is done
      heap.push_back(b);
      std::push_heap(heap.begin(), heap.end(), greater);
    }
  };
  while (out.size() < limit && !heap.empty()) {
    batch.clear();
    const size_t need = limit - out.size();
    while (batch.size() < need && !heap.empty()) {  // (a)
      std::pop_heap(heap.begin(), heap.end(), greater);
      c = heap.back();
      heap.pop_back();
      const bool take = std::string_view(c.key, c.len) > start_after;
      if (take) {
        batch.push_back(c);
        __builtin_prefetch(slot_of(c));
      }
      if (!take || batch.size() < need) advance(c);
    }
    for (size_t i = 0; i < batch.size(); ++i) {  // (b)
      const Cursor& b = batch[i];
      const std::string_view k(b.key, b.len);
      const bool kept = (out.empty() || out.back().key != k) && ReadSlot(slot_of(b), &v) &&
                        v.state == layout::kLive && v.key_view() == k;
      if (kept) out.push_back(Counter{std::string(k), v.value});
      if (i + 1 == need) {  // the one held back
        if (out.size() == limit) {
          heap.push_back(b);  // the saved heap's next pop is the page's last key
          std::push_heap(heap.begin(), heap.end(), greater);
        } else {
          advance(b);
        }
      }
    }
  }
  if (out.size() == limit) Save(prefix, start_after, out, std::move(heap));
  return out;
}

void SortedKeyIndex::Save(std::string_view prefix, std::string_view start_after,
                          const std::vector<Counter>& page, std::vector<Cursor> heap) {
  if (saved_.empty()) saved_.resize(kSavedMerges);
  SavedMerge* slot = &saved_[0];
  for (SavedMerge& m : saved_) {
    if (!m.used) {
      slot = &m;
      break;
    }
    if (m.touched < slot->touched) slot = &m;
  }
  slot->used = true;
  slot->touched = ++use_clock_;
  slot->generation = generation_;
  slot->prefix.assign(prefix);
  slot->before_last.assign(page.size() >= 2 ? std::string_view(page[page.size() - 2].key)
                                            : start_after);
  slot->last = page.back().key;
  slot->heap = std::move(heap);
}

}  // namespace countersd
