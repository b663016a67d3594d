// Fuzz target: the log of durable writes' segment parser
// (shared/write_ahead_log.h, ParseWalSegment), on bytes that are entirely
// untrusted: what a replay at start-up reads from <data-dir>/durable.*.wal. Every
// record it yields must be within the format's bounds, and must encode back
// to bytes that parse to the same records (the parser accepts exactly what
// the writer writes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "shared/key.h"
#include "shared/limits.h"
#include "shared/write_ahead_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  size_t valid = 0;
  const std::vector<countersd::WalRecord> records = countersd::ParseWalSegment(bytes, &valid);
  if (valid > size) std::abort();
  std::string again;
  for (const countersd::WalRecord& r : records) {
    if (r.ops.size() > countersd::kMaxBatchOps) std::abort();
    for (const countersd::WalOp& op : r.ops) {
      if (op.key.empty() || op.key.size() > countersd::kMaxKeyBytes) std::abort();
    }
    if (r.session_id.has_value() &&
        (r.session_id->size() != countersd::kSessionIdBytes || r.session_entry.values.empty() ||
         r.session_entry.values.size() > countersd::kSessionResponseValues)) {
      std::abort();
    }
    countersd::AppendWalRecord(&again, r);
  }
  if (again.size() != valid || countersd::ParseWalSegment(again) != records) std::abort();
  return 0;
}
