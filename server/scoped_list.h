// List over several key ranges: what a List by a principal scoped to some
// key prefixes returns (auth_policy.h, ListRanges), one sorted, stably paged
// listing made of the table's single-prefix List (shared/counter_table.h).
#ifndef COUNTERSD_SERVER_SCOPED_LIST_H_
#define COUNTERSD_SERVER_SCOPED_LIST_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "shared/counter_table.h"

namespace countersd {

// Up to `limit` counters whose key starts with one of `ranges`, sorted by
// key, each after `start_after` ("" : from the first). REQUIRES: `ranges`
// sorted and none a prefix of another (ListRanges' result). Paging with
// start_after = the last key of the previous page is as stable as the
// table's List: the ranges' keys never interleave (see scoped_list.cc).
std::vector<Counter> ListInRanges(const CounterTable& table, const std::vector<std::string>& ranges,
                                  std::string_view start_after, size_t limit);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_SCOPED_LIST_H_
