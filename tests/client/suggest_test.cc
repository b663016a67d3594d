// The "did you mean" of counterctl: edit distance and the closest word.
#include "client/counterctl/suggest.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace countersd::ctl {
namespace {

TEST(EditDistanceTest, CountsInsertionsDeletionsSubstitutionsAndSwaps) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("get", "get"), 0u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("stat", "stats"), 1u);    // insertion
  EXPECT_EQ(EditDistance("statss", "stats"), 1u);  // deletion
  EXPECT_EQ(EditDistance("gwt", "get"), 1u);       // substitution
  EXPECT_EQ(EditDistance("gte", "get"), 1u);       // swap of neighbours
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("ca", "abc"), 3u);  // optimal string alignment, not Damerau's 2
}

TEST(EditDistanceTest, IsSymmetric) {
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"snapshot", "snpashot"}, {"health", "heath"}, {"x", "inspect"}}) {
    EXPECT_EQ(EditDistance(a, b), EditDistance(b, a)) << a << " " << b;
  }
}

TEST(ClosestMatchTest, SuggestsOnlyWhatIsClose) {
  const std::vector<std::string> verbs = {"inc", "dec", "get", "set", "del", "stats", "snapshot"};
  EXPECT_EQ(ClosestMatch("gte", verbs), "get");
  EXPECT_EQ(ClosestMatch("stast", verbs), "stats");
  EXPECT_EQ(ClosestMatch("snapshto", verbs), "snapshot");
  EXPECT_EQ(ClosestMatch("snpshto", verbs), "snapshot");  // two edits in a long word
  EXPECT_EQ(ClosestMatch("frobnicate", verbs), "");
  EXPECT_EQ(ClosestMatch("gxx", verbs), "");  // two edits in a short word: not a guess
  EXPECT_EQ(ClosestMatch("x", verbs), "");
  EXPECT_EQ(ClosestMatch("", verbs), "");
  EXPECT_EQ(ClosestMatch("ged", verbs), "get");  // the first of equally close ones
}

}  // namespace
}  // namespace countersd::ctl
