// SortedKeyIndex: a per-process, per-table cache of each region's live keys
// in sorted order, so that a List page costs in proportion to the page, not
// to the table, and of the merge positions where recent listings stopped,
// so that a listing's next page resumes its merge instead of seeking every
// region again. Internal to shared/: CounterTable::List uses it. See
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

  // How many listings' merge positions are kept (the least recently saved
  // is replaced): enough for this many clients paging at once to resume;
  // each costs up to regions x sizeof(Cursor) (32 KiB at a 1,000,000
  // capacity: 1,024 regions of 32 bytes; 1 MiB for all of them).
  static constexpr size_t kSavedMerges = 32;

  // CounterTable::List's contract (counter_table.h). Thread-safe: one page
  // at a time per index (a mutex).
  std::vector<Counter> List(std::string_view prefix, std::string_view start_after, size_t limit);

  // What the last List did, for tests and measurements.
  struct PageStats {
    uint32_t regions_rebuilt = 0;
    uint64_t slots_scanned = 0;  // by the rebuilds
    bool resumed = false;        // continued a saved merge (no full seek)
    uint32_t regions_sought = 0;  // binary searches: all regions, or on a
                                  // resume those rebuilt since it was saved
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
    uint64_t rebuilt_at = 0;     // generation_ just after its last scan
    std::string_view key(const Entry& e) const { return {arena.data() + e.offset, e.len}; }
  };
  // A region's position in a merge: the index of its next entry, whose key
  // (which has the listing's prefix) it points to, with the key's 8 bytes
  // after the prefix big-endian in `head` (zero-padded): most comparisons
  // of the merge are one integer compare, with no load from the arena.
  struct Cursor {
    uint64_t head;
    const char* key;
    uint32_t region;
    uint32_t next;
    uint16_t len;
  };
  static_assert(sizeof(Cursor) == 32);
  // Where a listing's page stopped: `heap` is the merge's min-heap of
  // cursors, whose next pop yields `last` (the page's last key), and every
  // region's cursor is at its first key > `before_last` (the key returned
  // before `last`, or the page's start_after). So it resumes a page with
  // the same prefix and start_after == last or == before_last.
  struct SavedMerge {
    bool used = false;
    uint64_t touched = 0;     // use_clock_ at save: the oldest is replaced
    uint64_t generation = 0;  // generation_ at save
    std::string prefix;
    std::string before_last;
    std::string last;
    std::vector<Cursor> heap;
  };
  // Rescans region r if its key-set version changed since its last scan.
  // REQUIRES: mu_ held.
  void Refresh(uint32_t r);
  // Region r's cursor at its first key >= prefix and > start_after; false
  // if it has none with the prefix. REQUIRES: mu_ held.
  bool Seek(uint32_t r, std::string_view prefix, std::string_view start_after, Cursor* c);
  // Points c at entry c->next of its region; false if that is past the end
  // or its key lacks the prefix (the region is done). REQUIRES: mu_ held.
  bool Load(std::string_view prefix, Cursor* c) const;
  // The saved merge that resumes (prefix, start_after), or null.
  // REQUIRES: mu_ held.
  SavedMerge* FindSaved(std::string_view prefix, std::string_view start_after);
  // Saves the merge that stopped at page.back() (page is full). REQUIRES: mu_ held.
  void Save(std::string_view prefix, std::string_view start_after,
            const std::vector<Counter>& page, std::vector<Cursor> heap);

  const layout::RegionShared* const regions_;
  const layout::Slot* const slots_;
  const uint32_t region_count_;
  const uint32_t region_slots_;
  mutable std::mutex mu_;
  std::vector<RegionKeys> keys_;  // guarded by mu_
  // +1 at every region rescan: a saved merge whose generation is current
  // has every cursor valid. Guarded by mu_.
  uint64_t generation_ = 0;
  std::vector<SavedMerge> saved_;  // kSavedMerges of them; guarded by mu_
  uint64_t use_clock_ = 0;         // guarded by mu_
  PageStats stats_;                // guarded by mu_
};

}  // namespace countersd

#endif  // COUNTERSD_SHARED_SORTED_KEY_INDEX_H_
