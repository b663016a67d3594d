// List over several key ranges.
//
// How it works. The ranges are prefixes, sorted, none a prefix of another.
// For two such prefixes a < b, every key under a sorts before every key
// under b (they differ at a byte before either ends, and that byte decides),
// so the listing is the ranges' listings one after the other. A page starts
// after `start_after` (the previous page's last key, T):
//  - a range r < T that T does not start with: every key under r is < T,
//    skipped;
//  - a range r that T starts with: r's keys after T (the table's List with
//    start_after = T);
//  - a range r > T that T does not start with: every key under r is > T,
//    listed from its first.
// Each range's List asks only for what the page still lacks.
#include "server/scoped_list.h"

namespace countersd {

std::vector<Counter> ListInRanges(const CounterTable& table, const std::vector<std::string>& ranges,
                                  std::string_view start_after, size_t limit) {
  std::vector<Counter> out;
  for (const std::string& r : ranges) {
    if (out.size() >= limit) break;
    std::string_view after;
    if (!start_after.empty()) {
      const bool inside = start_after.substr(0, r.size()) == r;
      if (inside) {
        after = start_after;
      } else if (std::string_view(r) < start_after) {
        continue;
      }
    }
    std::vector<Counter> page = table.List(r, after, limit - out.size());
    for (Counter& c : page) out.push_back(std::move(c));
  }
  return out;
}

}  // namespace countersd
