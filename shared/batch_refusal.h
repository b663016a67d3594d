// The message of an atomic batch refused for one of its increments:
// "increment N: WHY", N the increment's index in the batch (from 0), and for
// an overflow "; no increment was applied" after it. The table makes it
// (table_batch.cc); a client that maps N back to its own input reads it
// (counterctl batch --pipe names the input line). One definition for both,
// so the two cannot drift apart.
#ifndef COUNTERSD_SHARED_BATCH_REFUSAL_H_
#define COUNTERSD_SHARED_BATCH_REFUSAL_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace countersd {

// What an overflow's message ends with.
inline constexpr absl::string_view kNoIncrementApplied = "; no increment was applied";

// "increment <index>: <why>".
std::string BatchRefusalMessage(size_t index, absl::string_view why);

struct BatchRefusal {
  size_t index;
  std::string why;  // without "increment N: " and kNoIncrementApplied
};

// The increment a refusal's message names, or nullopt for any other message.
std::optional<BatchRefusal> ParseBatchRefusal(absl::string_view message);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_BATCH_REFUSAL_H_
