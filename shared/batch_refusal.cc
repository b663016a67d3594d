// A batch refused for one increment: its message, made and read (batch_refusal.h).
#include "shared/batch_refusal.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace countersd {

namespace {
constexpr absl::string_view kPrefix = "increment ";
constexpr absl::string_view kSeparator = ": ";
}  // namespace

std::string BatchRefusalMessage(size_t index, absl::string_view why) {
  return absl::StrCat(kPrefix, index, kSeparator, why);
}

std::optional<BatchRefusal> ParseBatchRefusal(absl::string_view message) {
  absl::string_view m = message;
  if (!absl::ConsumePrefix(&m, kPrefix)) return std::nullopt;
  const size_t separator = m.find(kSeparator);
  size_t index;
  if (separator == absl::string_view::npos || !absl::SimpleAtoi(m.substr(0, separator), &index)) {
    return std::nullopt;
  }
  m.remove_prefix(separator + kSeparator.size());
  absl::ConsumeSuffix(&m, kNoIncrementApplied);
  return BatchRefusal{index, std::string(m)};
}

}  // namespace countersd
