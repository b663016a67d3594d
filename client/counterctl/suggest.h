// "Did you mean": the closest of a few known words to a mistyped one, by
// edit distance (optimal string alignment: insertions, deletions,
// substitutions and swaps of two neighbours each cost 1, so "gte" is one
// edit from "get"). Abseil has none.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_SUGGEST_H_
#define COUNTERSD_CLIENT_COUNTERCTL_SUGGEST_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace countersd::ctl {

// The edit distance between `a` and `b` (bytes, case-sensitive).
size_t EditDistance(absl::string_view a, absl::string_view b);

// The candidate closest to `word`, if it is close enough to be what was
// meant: at most 1 edit for a word of up to 4 bytes, else at most 2, and
// fewer edits than the word is long. The first of equally close ones;
// empty if none is close.
std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_SUGGEST_H_
