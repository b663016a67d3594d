#include "tests/recovery/recovery_checks.h"

#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"

namespace countersd::testing {
namespace {

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(GrpcDeadlineAfter(kCallDeadline));
}

absl::Status ToAbsl(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace

absl::StatusOr<int64_t> GetCounter(Stub& stub, const std::string& key) {
  grpc::ClientContext context;
  SetDeadline(context);
  counters::v1::GetRequest request;
  request.set_key(key);
  counters::v1::GetResponse response;
  grpc::Status s = stub.Get(&context, request, &response);
  if (!s.ok()) return ToAbsl(s);
  return response.value();
}

absl::StatusOr<int64_t> IncrementCounter(Stub& stub, const std::string& key, int64_t delta) {
  grpc::ClientContext context;
  SetDeadline(context);
  counters::v1::IncrementRequest request;
  request.set_key(key);
  request.set_delta(delta);
  counters::v1::IncrementResponse response;
  grpc::Status s = stub.Increment(&context, request, &response);
  if (!s.ok()) return ToAbsl(s);
  return response.value();
}

absl::StatusOr<counters::v1::SnapshotResponse> TakeSnapshot(Stub& stub, absl::Duration deadline) {
  grpc::ClientContext context;
  context.set_deadline(GrpcDeadlineAfter(deadline));
  counters::v1::SnapshotResponse response;
  grpc::Status s = stub.Snapshot(&context, counters::v1::SnapshotRequest(), &response);
  if (!s.ok()) return ToAbsl(s);
  return response;
}

absl::StatusOr<counters::v1::GetStatsResponse> GetStats(Stub& stub) {
  grpc::ClientContext context;
  SetDeadline(context);
  counters::v1::GetStatsResponse response;
  grpc::Status s = stub.GetStats(&context, counters::v1::GetStatsRequest(), &response);
  if (!s.ok()) return ToAbsl(s);
  return response;
}

absl::StatusOr<std::map<std::string, int64_t>> ListAll(Stub& stub, const std::string& prefix) {
  std::map<std::string, int64_t> out;
  std::string token;
  for (;;) {
    grpc::ClientContext context;
    SetDeadline(context);
    counters::v1::ListRequest request;
    request.set_prefix(prefix);
    request.set_page_size(1000);
    request.set_page_token(token);
    counters::v1::ListResponse response;
    grpc::Status s = stub.List(&context, request, &response);
    if (!s.ok()) return ToAbsl(s);
    for (const auto& c : response.counters()) out[c.key()] = c.value();
    if (response.next_page_token().empty()) return out;
    token = response.next_page_token();
  }
}

absl::StatusOr<std::set<pid_t>> HandlerPids(Stub& stub) {
  auto stats = GetStats(stub);
  if (!stats.ok()) return stats.status();
  std::set<pid_t> pids;
  for (const auto& h : stats->handlers()) pids.insert(h.pid());
  return pids;
}

absl::StatusOr<pid_t> BusiestHandler(Stub& stub) {
  auto stats = GetStats(stub);
  if (!stats.ok()) return stats.status();
  if (stats->handlers().empty()) return absl::FailedPreconditionError("GetStats lists no handler");
  const counters::v1::HandlerStats* busiest = &stats->handlers(0);
  for (const auto& h : stats->handlers()) {
    if (h.calls() > busiest->calls()) busiest = &h;
  }
  return busiest->pid();
}

absl::StatusOr<std::set<pid_t>> WaitForHandlersWithout(Stub& stub, pid_t dead, size_t handlers,
                                                       absl::Duration timeout) {
  absl::Time deadline = MonotonicNow() + timeout;
  std::string last;
  for (;;) {
    auto pids = HandlerPids(stub);
    if (pids.ok()) {
      if (pids->size() == handlers && !pids->contains(dead)) return *pids;
      last = absl::StrCat("handlers ", absl::StrJoin(*pids, ","));
    } else {
      last = pids.status().ToString();  // e.g. UNAVAILABLE while reconnecting
    }
    if (MonotonicNow() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("GetStats still shows dead handler ", dead,
                                                      " or not ", handlers, " handlers: ", last));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a sync point
  }
}

::testing::AssertionResult AcknowledgedIncrementsPresent(
    Stub& stub, const std::map<std::string, KeyTally>& tally) {
  return CountersBetween(stub, tally, tally);
}

::testing::AssertionResult CountersBetween(Stub& stub,
                                           const std::map<std::string, KeyTally>& at_least,
                                           const std::map<std::string, KeyTally>& at_most) {
  std::vector<std::string> broken;
  for (const auto& [key, low] : at_least) {
    auto high = at_most.find(key);
    if (high == at_most.end()) {
      return ::testing::AssertionFailure() << "no upper bound for " << key;
    }
    const int64_t min = low.acked;
    const int64_t max = high->second.acked + high->second.unknown;
    auto value = GetCounter(stub, key);
    int64_t v = 0;
    if (value.ok()) {
      v = *value;
    } else if (!absl::IsNotFound(value.status())) {
      return ::testing::AssertionFailure() << "Get(" << key << "): " << value.status();
    }
    if (v < min || v > max) {
      broken.push_back(absl::StrCat(key, ": value ", v, " not in [", min, ", ", max, "]"));
    }
  }
  if (broken.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "acked <= value <= acked + unknown broken for " << absl::StrJoin(broken, "; ");
}

::testing::AssertionResult CountersAllEqual(Stub& stub, const std::vector<std::string>& keys) {
  std::map<int64_t, std::vector<std::string>> by_value;
  for (const std::string& key : keys) {
    auto value = GetCounter(stub, key);
    if (!value.ok() && !absl::IsNotFound(value.status())) {
      return ::testing::AssertionFailure() << "Get(" << key << "): " << value.status();
    }
    by_value[value.ok() ? *value : 0].push_back(key);
  }
  if (by_value.size() <= 1) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << "a batch was applied in part:";
  for (const auto& [v, ks] : by_value)
    failure << " " << v << " in {" << absl::StrJoin(ks, ",") << "}";
  return failure;
}

::testing::AssertionResult CountersEqual(Stub& stub,
                                         const std::map<std::string, int64_t>& expected) {
  std::vector<std::string> wrong;
  for (const auto& [key, want] : expected) {
    auto value = GetCounter(stub, key);
    if (!value.ok()) {
      wrong.push_back(absl::StrCat(key, ": ", value.status().ToString(), ", want ", want));
    } else if (*value != want) {
      wrong.push_back(absl::StrCat(key, ": ", *value, ", want ", want));
    }
  }
  if (wrong.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << absl::StrJoin(wrong, "; ");
}

}  // namespace countersd::testing
