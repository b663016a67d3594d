// Golden values of the key hash. The hash is stored in every live slot of
// the map file and picks each key's region, so it is part of the layout: a
// change to it must come with a new layout version (and new golden values),
// never slip through silently.
#include "shared/key_hash.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "shared/layout.h"

namespace countersd {
namespace {

struct Golden {
  std::string key;
  uint64_t hash;
};

// Computed once by layout version 1's hash. Covers every branch of HashKey:
// empty, 1..3 bytes, 4..16 bytes, the 16/17-byte boundary, multi-block
// keys, non-ASCII UTF-8 and the longest key.
const Golden kLayoutV1[] = {
    {"", 0x42bc986dc5eec4d3ULL},
    {"a", 0x6cf84e5a2465e867ULL},
    {"ab", 0x172ba773b8ebb6d8ULL},
    {"abc", 0xb4808df22d44ffcfULL},
    {"abcd", 0xe73573b4c2ddfea0ULL},
    {"hello", 0xfaacec54df7a6205ULL},
    {"requests/total", 0x0204de9011de9a43ULL},
    {"0123456789abcdef", 0x461ebd6f5b59dfa7ULL},
    {"0123456789abcdefg", 0x7603b7053e7dbc5aULL},
    {"user:1234:page_views:2026-12-01", 0x0e7acacedd2f7778ULL},
    {"\xc3\xa9t\xc3\xa9", 0xc7167acb92844ecfULL},
    {std::string(160, 'x'), 0xdaefe6aeb68b548eULL},
};

TEST(KeyHashTest, MatchesTheGoldenValuesOfItsLayoutVersion) {
  // A new layout version needs its own table above: the hash may change
  // only together with the version.
  // Versions 2, 3 and 4 changed the header and added sections, not the
  // hash: the same values hold.
  ASSERT_LE(layout::kLayoutVersion, 4u)
      << "layout version changed: record the hash's golden values for the new version";
  for (const Golden& g : kLayoutV1) {
    EXPECT_EQ(HashKey(g.key), g.hash) << "key \"" << g.key << "\" (" << g.key.size() << " bytes)";
  }
}

TEST(KeyHashTest, DependsOnEveryByteAndTheLength) {
  const std::string base = "0123456789abcdefghijklmnopqrstuv";  // two blocks
  const uint64_t h = HashKey(base);
  for (size_t i = 0; i < base.size(); ++i) {
    std::string k = base;
    k[i] ^= 1;
    EXPECT_NE(HashKey(k), h) << "byte " << i;
  }
  EXPECT_NE(HashKey(base.substr(0, 31)), h);
  EXPECT_NE(HashKey(std::string("a\0", 2)), HashKey("a"));
}

}  // namespace
}  // namespace countersd
