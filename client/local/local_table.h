// countersd::local: a process on the same host as countersd (or in a
// container that shares its data directory) attaches to the daemon's live
// table and uses it directly, with no RPC: an increment is a lock, an add
// and an unlock in shared memory, tens of nanoseconds, under the same
// process-shared stripe locks as the daemon's handlers.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<countersd::local::LocalTable> t,
//                    countersd::local::LocalTable::Attach("/var/lib/countersd"));
//   ASSIGN_OR_RETURN(int64_t v, t->Increment("page.views", 1));
//
// Semantics and status codes are the RPCs' (proto/counters/v1/counters.proto):
// key rules, INVALID_ARGUMENT naming the bad key (in a batch, its index),
// OUT_OF_RANGE on overflow with nothing changed, atomic batches,
// RESOURCE_EXHAUSTED for a full table or a batch over the table's limit
// (1,000), NOT_FOUND for a missing counter. A value returned OK is in the
// daemon's table, in the same snapshots as the RPCs' increments (the same
// point-in-time and no-half-batch guarantees), and survives the death of
// any process, this one and the daemon included, as long as the host runs.
// Reads take no lock.
//
// Who may attach: whoever may open <data-dir>/counters.map read-write,
// the daemon's user or its --attach-group; an attached process is as
// trusted as a handler (no auth file applies). Otherwise PERMISSION_DENIED
// naming the file. No daemon owning the directory: UNAVAILABLE.
//
// When the daemon restarts, or sets the table aside, every later call of
// this handle returns UNAVAILABLE, having changed nothing: destroy it and
// Attach again. A process that dies, even inside a call, never wedges the
// daemon: it finds the death within 100ms when others wait for what it
// held (a second otherwise), rolls back its half-done work and frees its
// attach slot. A fork child cannot use its parent's handle (UNAVAILABLE):
// it attaches itself.
//
// Thread-safe: any number of threads may call one handle. Destroying it
// detaches: REQUIRES no call in flight.
#ifndef COUNTERSD_CLIENT_LOCAL_LOCAL_TABLE_H_
#define COUNTERSD_CLIENT_LOCAL_LOCAL_TABLE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace countersd {
class CounterTable;
}

namespace countersd::local {

class LocalTable {
 public:
  // Attaches to the daemon that owns `data_dir`.
  static absl::StatusOr<std::unique_ptr<LocalTable>> Attach(const std::string& data_dir);
  ~LocalTable();
  LocalTable(const LocalTable&) = delete;
  LocalTable& operator=(const LocalTable&) = delete;

  // Adds `delta`, creating the counter at 0 first; the new value.
  absl::StatusOr<int64_t> Increment(std::string_view key, int64_t delta = 1);
  struct KeyDelta {
    std::string_view key;
    int64_t delta = 1;
  };
  // All of them or none; values[i] is the value after increments[i].
  absl::StatusOr<std::vector<int64_t>> IncrementBatch(absl::Span<const KeyDelta> increments);
  absl::StatusOr<int64_t> Get(std::string_view key) const;
  // One entry per key, in order; nullopt for a missing counter.
  absl::StatusOr<std::vector<std::optional<int64_t>>> BatchGet(
      absl::Span<const std::string_view> keys) const;
  // The previous value, nullopt if the counter did not exist.
  absl::StatusOr<std::optional<int64_t>> Set(std::string_view key, int64_t value);
  struct CasResult {
    bool applied;
    int64_t value;  // the value now stored
  };
  // A missing counter counts as 0 (created only if the swap applies).
  absl::StatusOr<CasResult> CompareAndSet(std::string_view key, int64_t expected, int64_t value);
  // The value it had.
  absl::StatusOr<int64_t> Delete(std::string_view key);

  // This process's attach slot (counterctl stats lists it).
  uint32_t slot() const;

 private:
  explicit LocalTable(std::unique_ptr<CounterTable> table);
  std::unique_ptr<CounterTable> table_;
};

}  // namespace countersd::local

#endif  // COUNTERSD_CLIENT_LOCAL_LOCAL_TABLE_H_
