// The message of a batch refused for one increment (shared/batch_refusal.h):
// what the table says, read back as a client reads it.
#include "shared/batch_refusal.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

TEST(BatchRefusal, MessageAndParseAreInverse) {
  std::optional<BatchRefusal> r = ParseBatchRefusal(BatchRefusalMessage(12, "why: it is so"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->index, 12u);
  EXPECT_EQ(r->why, "why: it is so");
  r = ParseBatchRefusal(absl::StrCat(BatchRefusalMessage(3, "overflow"), kNoIncrementApplied));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->index, 3u);
  EXPECT_EQ(r->why, "overflow");
}

TEST(BatchRefusal, OtherMessagesNameNoIncrement) {
  for (const char* m : {"", "increment", "increment x: y", "increment 1 no separator",
                        "batch has 2000 increments; the limit is 1000", "increments[1]: bad key"}) {
    EXPECT_FALSE(ParseBatchRefusal(m).has_value()) << m;
  }
}

using BatchRefusalTable = TempDirTest;

TEST_F(BatchRefusalTable, TheTablesOverflowAndBadKeyAreRead) {
  std::unique_ptr<CounterTable> table = MustCreate(1000);
  ASSERT_NE(table, nullptr);
  ASSERT_TRUE(table->Set("max", INT64_MAX).ok());
  std::vector<CounterTable::KeyDelta> ops = {{"a", 1}, {"max", 1}};
  absl::Status overflow = table->IncrementBatch(ops).status();
  ASSERT_EQ(overflow.code(), absl::StatusCode::kOutOfRange) << overflow;
  std::optional<BatchRefusal> r = ParseBatchRefusal(overflow.message());
  ASSERT_TRUE(r.has_value()) << overflow;
  EXPECT_EQ(r->index, 1u);
  EXPECT_NE(r->why.find("would overflow"), std::string::npos) << r->why;
  ops = {{"a", 1}, {"b", 1}, {"", 1}};
  absl::Status bad_key = table->IncrementBatch(ops).status();
  ASSERT_EQ(bad_key.code(), absl::StatusCode::kInvalidArgument) << bad_key;
  r = ParseBatchRefusal(bad_key.message());
  ASSERT_TRUE(r.has_value()) << bad_key;
  EXPECT_EQ(r->index, 2u);
}

}  // namespace
}  // namespace countersd
