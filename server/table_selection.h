// Deciding, at start, which table file the daemon serves: the live map,
// a table restored from the last snapshot, or a new one. See
// table_selection.cc for how it works, step by step.
#ifndef COUNTERSD_SERVER_TABLE_SELECTION_H_
#define COUNTERSD_SERVER_TABLE_SELECTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "shared/counter_table.h"
#include "shared/data_dir.h"

namespace countersd {

struct TableSelectionOptions {
  std::string data_dir;   // must exist; the caller holds its flock
  uint64_t capacity = 0;  // for a new table (or the minimum for a restored one)
  // --capacity was given (flag or environment): a table whose capacity
  // differs is then a warning saying how to grow it.
  bool capacity_given = false;
  bool trust_untrusted_map = false;
  Sys* sys = RealSys();  // every call on the data directory's files goes through it
};

// Opens, restores or creates the table at <data_dir>/counters.map and logs
// what it did. REQUIRES: the caller holds the data directory's flock and no
// other process uses its files.
// Returns FAILED_PRECONDITION when the directory holds counter files but
// none is usable (the message says what was found, what was set aside and
// what the operator can do); other errors name the failed call.
// Never deletes or overwrites a file that failed validation: it is renamed
// to <name>.corrupt-<UTC time> or counters.map.untrusted-<UTC time>.
absl::StatusOr<std::unique_ptr<CounterTable>> SelectAndOpenTable(
    const TableSelectionOptions& options);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_TABLE_SELECTION_H_
