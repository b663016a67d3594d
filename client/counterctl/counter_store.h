// Where the counter verbs' calls go: the daemon over gRPC (CounterClient),
// or, under --attach=DIR, the live table of the daemon that owns DIR,
// attached in this process (countersd::local::LocalTable, issue 14). The
// verbs (inc, dec, get, set, cas, del, batch) make their calls through this
// one interface and print the results with the same code, so their output,
// JSON and exit codes are the same either way; only DescribeError's words
// for a failure differ (the data directory instead of the address).
//
// What differs underneath, and why the verbs need not care:
//  - The codes are the same: LocalTable has the RPCs' semantics and status
//    codes (key rules, OUT_OF_RANGE, atomic batches, RESOURCE_EXHAUSTED,
//    NOT_FOUND; a refused batch names its increment the same way,
//    shared/batch_refusal.h).
//  - Attached, --timeout, the token and TLS do not apply: a call takes a
//    stripe lock for nanoseconds, and who may attach is decided by the
//    map file's permissions (the daemon's user or its --attach-group).
//  - Over gRPC a mutation that fails UNAVAILABLE or DEADLINE_EXCEEDED may
//    have been applied (client.h: with --exactly-once, once its retries ran
//    out of --timeout; without, at the first lost reply); attached, a
//    refused call changed nothing (local_table.h). MayHaveApplied tells
//    batch --pipe which.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_COUNTER_STORE_H_
#define COUNTERSD_CLIENT_COUNTERCTL_COUNTER_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/client.h"
#include "client/counterctl/cli.h"

namespace countersd::ctl {

// The calls of CounterClient (client.h) that LocalTable also has, with
// CounterClient's contracts. Used from one thread.
class CounterStore {
 public:
  virtual ~CounterStore() = default;
  virtual absl::StatusOr<int64_t> Increment(std::string_view key, int64_t delta) = 0;
  // Answered once on stable storage (CallOptions::durable): the daemon's
  // log; an attached store has none (FAILED_PRECONDITION).
  virtual absl::StatusOr<int64_t> IncrementDurably(std::string_view key, int64_t delta) = 0;
  virtual absl::StatusOr<std::vector<int64_t>> IncrementBatch(
      absl::Span<const IncrementOp> ops) = 0;
  // At most kMaxBatchOps keys (shared/limits.h).
  virtual absl::StatusOr<std::vector<CounterEntry>> BatchGet(
      absl::Span<const std::string> keys) = 0;
  virtual absl::StatusOr<std::optional<int64_t>> Set(std::string_view key, int64_t value) = 0;
  virtual absl::StatusOr<CompareAndSetResult> CompareAndSet(std::string_view key, int64_t expected,
                                                            int64_t value) = 0;
  virtual absl::StatusOr<int64_t> Delete(std::string_view key) = 0;
  // Whether a mutation that failed with `status` may have been applied
  // all the same (see the top of this file).
  virtual bool MayHaveApplied(const absl::Status& status) const = 0;
};

// inv.attached(): attaches to inv.attach_dir; else a CounterClient as
// Connect (verbs.h) makes it. Exits with ReportError's code if that fails
// (attached: UNAVAILABLE when no daemon owns the directory, exit 1;
// PERMISSION_DENIED naming the file, exit 5).
std::unique_ptr<CounterStore> OpenCounterStore(const Invocation& inv);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_COUNTER_STORE_H_
