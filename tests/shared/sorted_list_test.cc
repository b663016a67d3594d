// CounterTable::List through its sorted key index: pages are sorted
// bytewise, and paging with start_after = the last key of the previous page
// is stable (no duplicates, no key skipped that existed throughout) across
// inserts and deletes between pages and during them; a listing's next page
// resumes the merge where the previous one stopped, seeking only the
// regions whose keys changed since.
#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/sorted_key_index.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

// Every key with `prefix`, page by page of `page` keys; `between` runs
// before each page after the first.
template <typename F>
std::vector<Counter> ListAll(const CounterTable& t, const std::string& prefix, size_t page,
                             F between) {
  std::vector<Counter> all;
  std::string after;
  while (true) {
    std::vector<Counter> p = t.List(prefix, after, page);
    all.insert(all.end(), p.begin(), p.end());
    if (p.size() < page) return all;
    after = p.back().key;
    between();
  }
}

class SortedListTest : public TempDirTest {};

// A model check: random inserts, deletes and increments, then listings with
// several page sizes and prefixes equal what a sorted map holds.
TEST_F(SortedListTest, PagesEqualASortedModelAfterRandomChanges) {
  auto t = MustCreate(20000);
  ASSERT_NE(t, nullptr);
  std::map<std::string, int64_t> model;
  std::mt19937 rng(7);
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 3000; ++i) {
      std::string key = absl::StrCat(rng() % 2 ? "a/" : "b/", rng() % 5000);
      if (rng() % 4 == 0) {
        if (t->Delete(key).ok()) model.erase(key);
      } else {
        ASSERT_TRUE(t->Increment(key, 3).ok());
        model[key] += 3;
      }
    }
    for (const std::string prefix : {"", "a/", "b/1", "zzz"}) {
      for (size_t page : {1, 7, 100, 1000}) {
        std::vector<Counter> got = ListAll(*t, prefix, page, [] {});
        std::vector<Counter> want;
        for (const auto& [k, v] : model) {
          if (k.compare(0, prefix.size(), prefix) == 0) want.push_back({k, v});
        }
        ASSERT_EQ(got, want) << "prefix '" << prefix << "' page " << page << " round " << round;
      }
    }
  }
}

// Between pages: keys inserted before and after the cursor, and deleted
// (only keys outside the set that exists throughout).
TEST_F(SortedListTest, PagingIsStableAcrossInsertsAndDeletesBetweenPages) {
  auto t = MustCreate(50000);
  ASSERT_NE(t, nullptr);
  std::set<std::string> throughout;
  for (int i = 0; i < 5000; ++i) {
    std::string key = absl::StrCat("k/", i * 2);  // even: exists throughout
    ASSERT_TRUE(t->Increment(key, 1).ok());
    throughout.insert(key);
  }
  std::mt19937 rng(11);
  std::set<std::string> ever = throughout;
  std::vector<std::string> churn;
  auto between = [&] {
    for (int i = 0; i < 50; ++i) {
      std::string key = absl::StrCat("k/", (rng() % 5000) * 2 + 1);  // odd: churn
      ASSERT_TRUE(t->Increment(key, 1).ok());
      ever.insert(key);
      churn.push_back(key);
    }
    for (int i = 0; i < 25 && !churn.empty(); ++i) {
      size_t j = rng() % churn.size();
      (void)t->Delete(churn[j]);
      churn.erase(churn.begin() + j);
    }
  };
  std::vector<Counter> got = ListAll(*t, "k/", 37, between);
  for (size_t i = 1; i < got.size(); ++i) {
    ASSERT_LT(got[i - 1].key, got[i].key) << "not sorted, or a duplicate, at " << i;
  }
  std::set<std::string> keys;
  for (const Counter& c : got) {
    keys.insert(c.key);
    EXPECT_TRUE(ever.count(c.key)) << c.key << " never existed";
  }
  for (const std::string& k : throughout) ASSERT_TRUE(keys.count(k)) << k << " was skipped";
}

// The same while another thread inserts and deletes during the pages.
TEST_F(SortedListTest, PagingIsStableWhileAnotherThreadInsertsAndDeletes) {
  auto t = MustCreate(50000);
  ASSERT_NE(t, nullptr);
  std::set<std::string> throughout;
  for (int i = 0; i < 5000; ++i) {
    std::string key = absl::StrCat("k/", i * 2);
    ASSERT_TRUE(t->Increment(key, 1).ok());
    throughout.insert(key);
  }
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937 rng(13);
    while (!stop.load()) {
      std::string key = absl::StrCat("k/", (rng() % 5000) * 2 + 1);
      if (rng() % 2) {
        (void)t->Increment(key, 1);
      } else {
        (void)t->Delete(key);
      }
    }
  });
  for (int listing = 0; listing < 20; ++listing) {
    std::vector<Counter> got = ListAll(*t, "k/", 53, [] {});
    std::set<std::string> keys;
    for (size_t i = 0; i < got.size(); ++i) {
      if (i > 0) {
        ASSERT_LT(got[i - 1].key, got[i].key) << "listing " << listing << " at " << i;
      }
      keys.insert(got[i].key);
    }
    for (const std::string& k : throughout) {
      ASSERT_TRUE(keys.count(k)) << k << " skipped in listing " << listing;
    }
  }
  stop.store(true);
  writer.join();
}

SortedKeyIndex::PageStats LastPage(const CounterTable& t) {
  return t.list_index_for_test()->last_page_stats();
}

std::vector<Counter> Model(const std::map<std::string, int64_t>& model, std::string_view after,
                           size_t limit) {
  std::vector<Counter> want;
  for (auto it = model.upper_bound(std::string(after)); it != model.end() && want.size() < limit;
       ++it) {
    want.push_back({it->first, it->second});
  }
  return want;
}

// The saved merge: a page that continues a listing (after its last key, or
// after the one before it, as the List RPC asks) seeks no region while no
// key is inserted or deleted, and only the changed region after an insert;
// a page that continues nothing seeks every region. The pages equal the
// model either way.
TEST_F(SortedListTest, ANextPageResumesTheMergeAndSeeksOnlyRegionsThatChanged) {
  auto t = MustCreate(100000);
  ASSERT_NE(t, nullptr);
  std::map<std::string, int64_t> model;
  for (int i = 0; i < 5000; ++i) {
    std::string key = absl::StrCat("k/", i);
    ASSERT_TRUE(t->Increment(key, i).ok());
    model[key] = i;
  }
  std::vector<Counter> page = t->List("", "", 101);
  ASSERT_EQ(page, Model(model, "", 101));
  const uint32_t regions = LastPage(*t).regions_sought;
  EXPECT_FALSE(LastPage(*t).resumed);
  EXPECT_GE(regions, 8u);
  // After the one before the last (the List RPC's pattern).
  std::string after = page[99].key;
  page = t->List("", after, 101);
  ASSERT_EQ(page, Model(model, after, 101));
  EXPECT_TRUE(LastPage(*t).resumed);
  EXPECT_EQ(LastPage(*t).regions_sought, 0u);
  // After the last key.
  after = page.back().key;
  page = t->List("", after, 50);
  ASSERT_EQ(page, Model(model, after, 50));
  EXPECT_TRUE(LastPage(*t).resumed);
  EXPECT_EQ(LastPage(*t).regions_sought, 0u);
  // Increments change no key set: still resumed, nothing sought.
  ASSERT_TRUE(t->Increment("k/4999", 1).ok());
  model["k/4999"] += 1;
  after = page.back().key;
  page = t->List("", after, 50);
  ASSERT_EQ(page, Model(model, after, 50));
  EXPECT_EQ(LastPage(*t).regions_sought, 0u);
  // One insert after the cursor and one delete: two regions (or one) rescanned
  // and sought again; the new key is in the page, the deleted one not.
  ASSERT_TRUE(t->Increment("k/1000000", 7).ok());
  model["k/1000000"] = 7;
  std::string victim = Model(model, page.back().key, 3)[1].key;
  ASSERT_TRUE(t->Delete(victim).ok());
  model.erase(victim);
  after = page.back().key;
  page = t->List("", after, 400);
  ASSERT_EQ(page, Model(model, after, 400));
  EXPECT_TRUE(LastPage(*t).resumed);
  EXPECT_GE(LastPage(*t).regions_sought, 1u);
  EXPECT_LE(LastPage(*t).regions_sought, 2u);
  EXPECT_EQ(LastPage(*t).regions_rebuilt, LastPage(*t).regions_sought);
  // A start_after no listing stopped at: every region sought.
  page = t->List("", "k/2", 10);
  ASSERT_EQ(page, Model(model, "k/2", 10));
  EXPECT_FALSE(LastPage(*t).resumed);
  EXPECT_EQ(LastPage(*t).regions_sought, regions);
}

// Listings interleaved page by page each resume their own merge, up to
// kSavedMerges of them; one more than that and the least recently saved
// merge is gone when its listing comes back (the cache is bounded).
TEST_F(SortedListTest, InterleavedListingsResumeUpToTheBoundOfSavedMerges) {
  auto t = MustCreate(100000);
  ASSERT_NE(t, nullptr);
  std::map<std::string, int64_t> model;
  for (int i = 0; i < 5000; ++i) {
    std::string key = absl::StrCat("k/", i);
    ASSERT_TRUE(t->Increment(key, 1).ok());
    model[key] = 1;
  }
  for (size_t listings : {SortedKeyIndex::kSavedMerges, SortedKeyIndex::kSavedMerges + 1}) {
    // Listing j starts after the model's (150 j)th key: 3 pages of 20 never
    // reach the next listing's start, and no start is a saved place.
    std::vector<std::string> after(listings);
    for (size_t j = 0; j < listings; ++j) after[j] = std::next(model.begin(), 150 * j + 7)->first;
    for (int round = 0; round < 3; ++round) {
      for (size_t j = 0; j < listings; ++j) {
        std::vector<Counter> page = t->List("", after[j], 20);
        ASSERT_EQ(page, Model(model, after[j], 20)) << "listing " << j << " round " << round;
        const bool want_resumed = round > 0 && listings <= SortedKeyIndex::kSavedMerges;
        EXPECT_EQ(LastPage(*t).resumed, want_resumed) << "listing " << j << " round " << round;
        after[j] = page.back().key;
      }
    }
  }
}

// A prefix ends each region's part of the merge at its first key without
// it; a listing of a prefix resumes as well and never strays outside it.
TEST_F(SortedListTest, APrefixListingResumesAndStaysInsideThePrefix) {
  auto t = MustCreate(100000);
  ASSERT_NE(t, nullptr);
  std::map<std::string, int64_t> model;
  for (int i = 0; i < 3000; ++i) {
    for (const char* p : {"a/", "ab/", "b/"}) {
      std::string key = absl::StrCat(p, i);
      ASSERT_TRUE(t->Increment(key, i).ok());
      model[key] = i;
    }
  }
  std::map<std::string, int64_t> want_map;
  for (const auto& [k, v] : model) {
    if (k.rfind("a", 0) == 0) want_map[k] = v;
  }
  std::vector<Counter> all;
  std::string after;
  int resumed = 0;
  for (int pages = 0;; ++pages) {
    std::vector<Counter> page = t->List("a", after, 64);
    resumed += LastPage(*t).resumed;
    ASSERT_EQ(page, Model(want_map, after, 64)) << "page " << pages;
    all.insert(all.end(), page.begin(), page.end());
    if (page.size() < 64) break;
    after = page.back().key;
  }
  EXPECT_EQ(all.size(), want_map.size());
  EXPECT_EQ(resumed, static_cast<int>(want_map.size() / 64));
}

}  // namespace
}  // namespace countersd
