// counters.v1.CounterService over the shared table.
//
// How it works:
//  - The Do* methods are thin: validate what the table does not (batch
//    sizes, page tokens, and each key of a batch, so that an error names its
//    index), call the table, fill the response. The table's errors are the
//    API's errors and pass through unchanged.
//  - Snapshot (DoSnapshot) asks the aggregator process for a snapshot through
//    the SnapshotControl words in the mapping (shared/control.h):
//      1. my = ++request_seq, and wake the aggregator's futex wait on it;
//      2. wait on done_seq, in slices of at most 50ms, until done_seq has
//         reached my: a snapshot that started after step 1 is durable;
//      3. read the result the aggregator published (generation, counters,
//         bytes), or fail INTERNAL if that snapshot did not reach disk.
//    The wait gives up at the client's deadline (DEADLINE_EXCEEDED), after
//    kSnapshotWaitCap (UNAVAILABLE: the aggregator may be restarting), or at
//    the drain deadline (UNAVAILABLE); the 50ms slices are what notice a
//    drain.
//  - Draining: StartDraining sets a flag that every new call checks first
//    (UNAVAILABLE), and the time by which waiting Snapshot calls give up.
//    The handler waits for those (WaitForSnapshotWaiters) before it shuts
//    its server down; the async calls finish inline on the serving thread.
#include "server/counter_service.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "countersd_version.h"
#include "proto/grpc_deadline.h"
#include "proto/status_conversion.h"
#include "server/local_calls.h"
#include "server/scoped_list.h"
#include "server/write_session.h"
#include "shared/abseil_string_view.h"
#include "shared/batch_refusal.h"
#include "shared/durability_lag.h"
#include "shared/key.h"
#include "shared/monotonic_time.h"
#include "shared/status_macros.h"

namespace countersd {
namespace {

using namespace counters::v1;  // NOLINT: the RPC message types

}  // namespace

CounterServiceImpl::CounterServiceImpl(CounterTable* table, size_t max_batch, AccessControl* access,
                                       const StatsArea* stats, int stats_index)
    : table_(table),
      max_batch_(max_batch),
      access_(access),
      stats_(stats),
      row_(stats != nullptr ? &stats->row(stats_index) : nullptr) {}

CounterServiceImpl::~CounterServiceImpl() = default;

absl::Status CounterServiceImpl::DrainingError() {
  return absl::UnavailableError("countersd is shutting down; retry elsewhere");
}

void CounterServiceImpl::StartDraining(absl::Time give_up_at) {
  give_up_at_ns_.store(absl::ToUnixNanos(give_up_at));  // a MonotonicNow time
  draining_.store(true, std::memory_order_release);
}

void CounterServiceImpl::WaitForSnapshotWaiters() {
  std::unique_lock<std::mutex> lock(waiters_mu_);
  waiters_cv_.wait(lock, [this] { return snapshot_waiters_ == 0; });
}

// ---- Snapshot: a sync RPC (it blocks until the snapshot is durable). ----

grpc::Status CounterServiceImpl::Snapshot(grpc::ServerContext* ctx, const SnapshotRequest*,
                                          SnapshotResponse* resp) {
  const int64_t start = CallStart();
  if (draining()) {
    CountCall(RpcMethod::kSnapshot, DrainingError(), start);
    return ToGrpcStatus(DrainingError());
  }
  if (access_ != nullptr && access_->enabled()) {
    absl::StatusOr<AccessControl::Admission> a =
        AdmitCall(*access_, ctx, RpcMethod::kSnapshot);
    if (!a.ok()) {
      CountCall(RpcMethod::kSnapshot, a.status(), start);
      return ToGrpcStatus(a.status());
    }
  }
  const absl::Time client_deadline = MonotonicNow() + GrpcTimeLeft(ctx->raw_deadline());
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    ++snapshot_waiters_;
  }
  absl::Status status = DoSnapshot(client_deadline, resp);
  CountCall(RpcMethod::kSnapshot, status, start);
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (--snapshot_waiters_ == 0) waiters_cv_.notify_all();
  }
  return ToGrpcStatus(status);
}

// ---- Request handling. ----

// A refusal of the batch of one that a session's or durable Increment is
// (CounterTable::IncrementBatch) in Increment's own words: the batch's
// "increment 0: " and "; no increment was applied" dropped, the code kept,
// so that a refused Increment reads the same with options or without.
namespace {
absl::Status AsSingleIncrement(const absl::Status& status) {
  std::optional<BatchRefusal> refusal = ParseBatchRefusal(status.message());
  if (!refusal.has_value() || refusal->index != 0) return status;
  return absl::Status(status.code(), refusal->why);
}
}  // namespace

// Durable writes (shared/write_ahead_log.h): refused before anything is
// applied when this handler has no log.
template <typename Request>
absl::StatusOr<WriteControl> CounterServiceImpl::ControlOf(const counters::v1::WriteOptions& options,
                                                           const Request& request) {
  if (options.durable() && !durable_writes_) {
    return absl::UnavailableError(
        "this daemon cannot make writes durable (its log of durable writes did not start; see "
        "its log); nothing was applied");
  }
  return WriteControlOf(options, request);
}

absl::Status CounterServiceImpl::LogIfDurable(const WriteControl& control,
                                              const WriteResponse& response,
                                              std::vector<WalOp> ops,
                                              absl::Span<const std::string_view> keys) {
  if (!control.durable) return absl::OkStatus();
  WalRecord record;
  if (response.duplicate) {
    // Whatever became of the first attempt's record, the keys' values now
    // hold its effect: log them (write_ahead_log.h, the retries).
    ASSIGN_OR_RETURN(record, table_->CurrentValuesForLog(keys));
  } else {
    record.lsn = response.lsn;
    record.ops = std::move(ops);
  }
  if (control.session.has_value()) {
    record.session_id = std::string(control.session->id);
    record.session_entry = {control.session->sequence, control.session->fingerprint, response.flag,
                            response.values};
  }
  if (record.ops.empty() && !record.session_id.has_value()) return absl::OkStatus();
  // Its method and start: HandleCall's, once the call returned OK.
  durable_write_ = DurableWrite{std::move(record), RpcMethod::kIncrement, 0};
  return absl::OkStatus();
}

std::optional<CounterServiceImpl::DurableWrite> CounterServiceImpl::TakeDurableWrite() {
  std::optional<DurableWrite> w = std::move(durable_write_);
  durable_write_.reset();
  return w;
}

absl::Status CounterServiceImpl::DoIncrement(const IncrementRequest& req, IncrementResponse* resp) {
  const int64_t delta = req.has_delta() ? req.delta() : 1;
  if (!IsPlainWrite(req.options())) {
    ASSIGN_OR_RETURN(WriteControl control, ControlOf(req.options(), req));
    RETURN_IF_ERROR(ValidateKey(req.key()));
    const CounterTable::KeyDelta op{req.key(), delta};
    absl::StatusOr<WriteResponse> w = table_->IncrementBatch({&op, 1}, control);
    if (!w.ok()) return AsSingleIncrement(w.status());
    const WriteResponse& r = *w;
    resp->set_value(r.values.at(0));
    const std::string_view key = req.key();
    return LogIfDurable(control, r, {WalOp{WalOp::kAdd, req.key(), delta}}, {&key, 1});
  }
  ASSIGN_OR_RETURN(int64_t value, table_->Increment(req.key(), delta));
  resp->set_value(value);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::IncrementAll(
    const google::protobuf::RepeatedPtrField<IncrementRequest>& increments,
    const counters::v1::WriteOptions& options, google::protobuf::RepeatedField<int64_t>* values) {
  const size_t n = static_cast<size_t>(increments.size());
  if (n == 0) return absl::InvalidArgumentError("increments is empty");
  if (n > max_batch_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "batch of ", n, " increments exceeds the server's limit (--max-batch=", max_batch_, ")"));
  }
  std::vector<CounterTable::KeyDelta> ops;
  ops.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const IncrementRequest& inc = increments[static_cast<int>(i)];
    RETURN_IF_ERROR(ValidateKeyAt(inc.key(), "increments", i));
    if (inc.has_options()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "increments[", i, "].options: a batch's increments carry no options; the batch's own "
          "options (or the stream message's) name its session"));
    }
    ops.push_back({inc.key(), inc.has_delta() ? inc.delta() : 1});
  }
  if (!IsPlainWrite(options)) {
    ASSIGN_OR_RETURN(WriteControl control, ControlOf(options, increments));
    ASSIGN_OR_RETURN(WriteResponse r, table_->IncrementBatch(ops, control));
    values->Assign(r.values.begin(), r.values.end());
    if (!control.durable) return absl::OkStatus();
    std::vector<WalOp> log;
    std::vector<std::string_view> keys;
    for (const CounterTable::KeyDelta& op : ops) {
      log.push_back(WalOp{WalOp::kAdd, std::string(op.key), op.delta});
      keys.push_back(op.key);
    }
    return LogIfDurable(control, r, std::move(log), keys);
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> result, table_->IncrementBatch(ops));
  values->Assign(result.begin(), result.end());
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoIncrementBatch(const IncrementBatchRequest& req,
                                                  IncrementBatchResponse* resp) {
  return IncrementAll(req.increments(), req.options(), resp->mutable_values());
}

absl::Status CounterServiceImpl::DoIncrementStream(const IncrementStreamRequest& req,
                                                   IncrementStreamResponse* resp) {
  return IncrementAll(req.increments(), req.options(), resp->mutable_values());
}

absl::Status CounterServiceImpl::AdmitStream(const grpc::ServerContext* ctx) {
  if (draining()) return DrainingError();
  if (access_ == nullptr || !access_->enabled()) return absl::OkStatus();
  return AdmitCall(*access_, ctx, RpcMethod::kIncrementStream).status();
}

absl::Status CounterServiceImpl::DoGet(const GetRequest& req, GetResponse* resp) {
  ASSIGN_OR_RETURN(int64_t value, table_->Get(req.key()));
  resp->set_value(value);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoBatchGet(const BatchGetRequest& req, BatchGetResponse* resp) {
  const size_t n = static_cast<size_t>(req.keys_size());
  if (n > max_batch_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "batch of ", n, " keys exceeds the server's limit (--max-batch=", max_batch_, ")"));
  }
  for (size_t i = 0; i < n; ++i) RETURN_IF_ERROR(ValidateKeyAt(req.keys(static_cast<int>(i)), "keys", i));
  for (const std::string& key : req.keys()) {
    counters::v1::Counter* c = resp->add_counters();
    c->set_key(key);
    absl::StatusOr<int64_t> value = table_->Get(key);
    if (value.ok()) {
      c->set_value(*value);
      c->set_found(true);
    } else if (!absl::IsNotFound(value.status())) {
      return value.status();
    }
  }
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoList(const ListRequest& req, ListResponse* resp) {
  return DoListInRanges(req, {req.prefix()}, resp);
}

absl::Status CounterServiceImpl::DoListInRanges(const ListRequest& req,
                                                const std::vector<std::string>& ranges,
                                                ListResponse* resp) {
  if (req.prefix().size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix is ", req.prefix().size(), " bytes; keys are at most ", kMaxKeyBytes));
  }
  if (req.page_size() < 0) return absl::InvalidArgumentError("page_size must not be negative");
  size_t limit =
      req.page_size() == 0 ? kDefaultPageSize : std::min<size_t>(req.page_size(), kMaxPageSize);
  if (!req.page_token().empty()) {
    if (!ValidateKey(req.page_token()).ok() ||
        req.page_token().compare(0, req.prefix().size(), req.prefix()) != 0) {
      return absl::InvalidArgumentError(
          "malformed page_token: pass the next_page_token of the previous page of the same "
          "listing (same prefix)");
    }
  }
  std::vector<Counter> page = ListInRanges(*table_, ranges, req.page_token(), limit + 1);
  bool more = page.size() > limit;
  if (more) page.resize(limit);
  for (Counter& c : page) {
    counters::v1::Counter* out = resp->add_counters();
    out->set_key(std::move(c.key));
    out->set_value(c.value);
    out->set_found(true);
  }
  if (more) resp->set_next_page_token(resp->counters(resp->counters_size() - 1).key());
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoSet(const SetRequest& req, SetResponse* resp) {
  if (!IsPlainWrite(req.options())) {
    ASSIGN_OR_RETURN(WriteControl control, ControlOf(req.options(), req));
    ASSIGN_OR_RETURN(WriteResponse r, table_->Set(req.key(), req.value(), control));
    if (r.flag) resp->set_previous_value(r.values.at(0));
    const std::string_view key = req.key();
    return LogIfDurable(control, r, {WalOp{WalOp::kSet, req.key(), req.value()}}, {&key, 1});
  }
  ASSIGN_OR_RETURN(std::optional<int64_t> previous, table_->Set(req.key(), req.value()));
  if (previous) resp->set_previous_value(*previous);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoCompareAndSet(const CompareAndSetRequest& req,
                                                 CompareAndSetResponse* resp) {
  if (!IsPlainWrite(req.options())) {
    ASSIGN_OR_RETURN(WriteControl control, ControlOf(req.options(), req));
    ASSIGN_OR_RETURN(WriteResponse w,
                     table_->CompareAndSet(req.key(), req.expected(), req.value(), control));
    resp->set_applied(w.flag);
    resp->set_value(w.values.at(0));
    // A swap that did not apply changed no counter: only its session's
    // entry (if any) is logged.
    std::vector<WalOp> log;
    if (w.flag) log.push_back(WalOp{WalOp::kSet, req.key(), req.value()});
    const std::string_view key = req.key();
    return LogIfDurable(control, w, std::move(log), {&key, 1});
  }
  ASSIGN_OR_RETURN(CounterTable::CasResult r,
                   table_->CompareAndSet(req.key(), req.expected(), req.value()));
  resp->set_applied(r.applied);
  resp->set_value(r.value);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoDelete(const DeleteRequest& req, DeleteResponse* resp) {
  if (!IsPlainWrite(req.options())) {
    ASSIGN_OR_RETURN(WriteControl control, ControlOf(req.options(), req));
    ASSIGN_OR_RETURN(WriteResponse r, table_->Delete(req.key(), control));
    resp->set_previous_value(r.values.at(0));
    const std::string_view key = req.key();
    return LogIfDurable(control, r, {WalOp{WalOp::kDelete, req.key(), 0}}, {&key, 1});
  }
  ASSIGN_OR_RETURN(int64_t previous, table_->Delete(req.key()));
  resp->set_previous_value(previous);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoSnapshot(absl::Time client_deadline, SnapshotResponse* resp) {
  const absl::Time cap = MonotonicNow() + kSnapshotWaitCap;
  const absl::Time deadline = std::min(cap, client_deadline);
  SnapshotControl& control = table_->snapshot_control();
  const uint32_t my = control.request_seq.fetch_add(1) + 1;
  FutexWakeAll(&control.request_seq);
  while (true) {
    uint32_t done = control.done_seq.load(std::memory_order_acquire);
    if (static_cast<int32_t>(done - my) >= 0) break;
    absl::Time now = MonotonicNow();
    absl::Time give_up = absl::FromUnixNanos(give_up_at_ns_.load());
    if (now >= give_up) return DrainingError();
    if (now >= deadline) {
      return client_deadline < cap
                 ? absl::DeadlineExceededError("no snapshot completed before the deadline")
                 : absl::UnavailableError(absl::StrCat(
                       "no snapshot completed within ", absl::FormatDuration(kSnapshotWaitCap),
                       "; the snapshot writer may be restarting (see the daemon log)"));
    }
    // Bounded slices so that a drain is noticed.
    FutexWait(&control.done_seq, done, std::min(deadline - now, absl::Milliseconds(50)));
  }
  if (control.last_failed.load(std::memory_order_acquire) != 0) {
    return absl::InternalError(
        "the snapshot failed to reach disk (an msync/fsync error, or no writable snapshot file: "
        "a full disk; see the daemon log); the previous snapshot stays valid");
  }
  resp->set_generation(control.generation.load(std::memory_order_acquire));
  resp->set_counters(control.counters.load(std::memory_order_relaxed));
  resp->set_bytes(control.bytes.load(std::memory_order_relaxed));
  return absl::OkStatus();
}

namespace {

void AddConnections(const ConnectionCounts& c, ConnectionStats* out) {
  out->set_accepted(out->accepted() + c.accepted);
  out->set_refused_over_cap(out->refused_over_cap() + c.refused);
  out->set_handshake_timeouts(out->handshake_timeouts() + c.handshake_timeouts);
  out->set_open(out->open() + c.open);
}

}  // namespace

absl::Status CounterServiceImpl::DoGetStats(const GetStatsRequest&, GetStatsResponse* resp) {
  // The handlers that died since the table was opened count in the totals.
  ConnectionCounts retired;
  for (const ProcessStats& p : table_->ProcessStatsSnapshot(&retired)) {
    if (p.role != ProcessRole::kHandler) continue;
    HandlerStats* h = resp->add_handlers();
    h->set_pid(p.pid);
    if (stats_ != nullptr) {
      // The calls of the handler's index, its predecessors' included.
      for (const HandlerStatsRow& row : stats_->shared().handlers) {
        if (row.pid.load(std::memory_order_relaxed) != p.pid) continue;
        CallTotals calls;
        calls.Add(row);
        h->set_calls(calls.calls());
        h->set_errors(calls.errors());
      }
    }
    AddConnections(p.connections, h->mutable_connections());
    AddConnections(p.connections, resp->mutable_connections());
  }
  AddConnections(retired, resp->mutable_connections());
  for (const AttacherStats& a : table_->AttacherStatsSnapshot()) {
    counters::v1::AttacherStats* out = resp->add_attachers();
    out->set_slot(a.slot);
    out->set_pid(a.pid);
    out->set_uid(a.uid);
    out->set_current(a.current);
    out->set_attached_unix_seconds(a.attached_unix_ns / 1000000000);
    for (int m = 0; m < kLocalCallKinds; ++m) {
      if (a.calls[m] == 0) continue;
      LocalCalls* c = out->add_calls();
      c->set_method(RpcMethodName(kLocalCallMethods[m]));
      c->set_count(a.calls[m]);
    }
    out->set_failures(a.failures);
  }
  const SnapshotControl& control = table_->snapshot_control();
  resp->set_capacity(table_->capacity());
  resp->set_used(table_->size());
  resp->set_last_snapshot_generation(control.generation.load(std::memory_order_acquire));
  resp->set_last_snapshot_unix_seconds(control.unix_ns.load(std::memory_order_relaxed) /
                                       1000000000);
  resp->set_last_snapshot_micros(control.micros.load(std::memory_order_relaxed));
  resp->set_last_snapshot_bytes(control.bytes.load(std::memory_order_relaxed));
  resp->set_served_by_pid(getpid());
  resp->set_server_version(kVersion);
  // The limit only decides `lagging`, which GetStats does not report.
  const DurabilityLag lag = ReadDurabilityLag(*table_, absl::InfiniteDuration());
  if (lag.behind) {
    resp->set_oldest_undurable_change_age_seconds(
        static_cast<uint64_t>(absl::ToInt64Seconds(lag.oldest_age)));
  }
  resp->set_consecutive_snapshot_failures(lag.consecutive_failures);
  resp->set_snapshot_failures(lag.failures);
  if (stats_ != nullptr) {
    const StatsAreaShared& area = stats_->shared();
    resp->set_uptime_seconds(static_cast<uint64_t>(
        std::max<int64_t>(0, StatsArea::Now() - area.start_monotonic_ns) / 1000000000));
    for (int role = 0; role < kRestartRoles; ++role) {
      for (int reason = 0; reason < kExitReasons; ++reason) {
        const uint64_t n = area.restarts[role][reason].load(std::memory_order_relaxed);
        if (n == 0) continue;
        ProcessRestarts* r = resp->add_restarts();
        r->set_role(std::string(RestartRoleName(static_cast<RestartRole>(role))));
        r->set_reason(std::string(ExitReasonName(static_cast<ExitReason>(reason))));
        r->set_count(n);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace countersd
