// CounterTable::List through its sorted key index: pages are sorted
// bytewise, and paging with start_after = the last key of the previous page
// is stable (no duplicates, no key skipped that existed throughout) across
// inserts and deletes between pages and during them.
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

}  // namespace
}  // namespace countersd
