// What the recovery tests check against a running daemon, over real gRPC:
// that acknowledged increments are present, what a counter holds, which
// handlers serve, and the log lines the daemon writes when it recovers.
#ifndef COUNTERSD_TESTS_RECOVERY_RECOVERY_CHECKS_H_
#define COUNTERSD_TESTS_RECOVERY_RECOVERY_CHECKS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "counters/v1/counters.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/recovery/increment_load.h"

namespace countersd::testing {

using Stub = counters::v1::CounterService::Stub;

// Deadline of every single call the checks make.
inline constexpr absl::Duration kCallDeadline = absl::Seconds(30);

// The counter's value; NOT_FOUND if it does not exist; other codes as the
// server returned them.
absl::StatusOr<int64_t> GetCounter(Stub& stub, const std::string& key);
absl::StatusOr<int64_t> IncrementCounter(Stub& stub, const std::string& key, int64_t delta);
absl::StatusOr<counters::v1::SnapshotResponse> TakeSnapshot(
    Stub& stub, absl::Duration deadline = kCallDeadline);
absl::StatusOr<counters::v1::GetStatsResponse> GetStats(Stub& stub);
// Every counter whose key starts with `prefix` (pages through List).
absl::StatusOr<std::map<std::string, int64_t>> ListAll(Stub& stub, const std::string& prefix);

// The pids of the handlers GetStats reports.
absl::StatusOr<std::set<pid_t>> HandlerPids(Stub& stub);
// The handler that served the most calls.
absl::StatusOr<pid_t> BusiestHandler(Stub& stub);
// Polls GetStats (an observable state, so polling is the way to wait) until
// it reports `handlers` handlers none of which is `dead`; returns their pids.
// DEADLINE_EXCEEDED with the last answer if that does not happen in time.
absl::StatusOr<std::set<pid_t>> WaitForHandlersWithout(Stub& stub, pid_t dead, size_t handlers,
                                                       absl::Duration timeout);

// For every key of `tally`: acked <= value <= acked + unknown, where value is
// what Get returns now (a missing counter counts as 0). Names every key that
// breaks it.
::testing::AssertionResult AcknowledgedIncrementsPresent(
    Stub& stub, const std::map<std::string, KeyTally>& tally);

// For every key k of `at_least`: at_least[k].acked <= value <= at_most[k].acked
// + at_most[k].unknown (a missing counter counts as 0). For a value restored
// from a snapshot: `at_least` is the progress cut taken before the Snapshot
// call, `at_most` the one taken after it returned.
::testing::AssertionResult CountersBetween(Stub& stub,
                                           const std::map<std::string, KeyTally>& at_least,
                                           const std::map<std::string, KeyTally>& at_most);

// Every key of `keys` holds the same value (a missing counter counts as 0):
// what atomic batches that add 1 to each of them leave behind.
::testing::AssertionResult CountersAllEqual(Stub& stub, const std::vector<std::string>& keys);

// For every key of `expected`: Get returns exactly that value.
::testing::AssertionResult CountersEqual(Stub& stub,
                                         const std::map<std::string, int64_t>& expected);

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_RECOVERY_RECOVERY_CHECKS_H_
