// What the log of durable writes in a data directory holds, summed per key:
// for tests that check a durable write is on disk once it is answered.
#ifndef COUNTERSD_TESTS_SHARED_LOGGED_ADDS_H_
#define COUNTERSD_TESTS_SHARED_LOGGED_ADDS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shared/write_ahead_log.h"

namespace countersd {

// The deltas of every add in every record of `data_dir`'s segments, summed
// per key (ReadWal: a torn tail is ignored).
inline absl::StatusOr<std::map<std::string, int64_t>> LoggedAdds(const std::string& data_dir) {
  absl::StatusOr<std::vector<WalRecord>> log = ReadWal(data_dir);
  if (!log.ok()) return log.status();
  std::map<std::string, int64_t> sums;
  for (const WalRecord& r : *log) {
    for (const WalOp& op : r.ops) {
      if (op.kind == WalOp::kAdd) sums[op.key] += op.value;
    }
  }
  return sums;
}

}  // namespace countersd

#endif  // COUNTERSD_TESTS_SHARED_LOGGED_ADDS_H_
