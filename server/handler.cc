#include "server/handler.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpc/support/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/status_mapping.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/status_macros.h"

namespace countersd {
namespace {

using namespace counters::v1;  // NOLINT: the RPC message types

// How long a draining handler keeps connections open once its own calls
// are done (responses still being written, calls not yet dispatched).
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(250);

const absl::Status kDraining = absl::UnavailableError("countersd is shutting down; retry elsewhere");

absl::Status AtIndex(const absl::Status& s, std::string_view what, size_t i) {
  return absl::Status(s.code(), absl::StrCat(std::string(what), "[", i, "]: ", s.message()));
}

}  // namespace

CounterServiceImpl::CounterServiceImpl(CounterTable* table, size_t max_batch)
    : table_(table), max_batch_(max_batch) {}

CounterServiceImpl::~CounterServiceImpl() = default;

void CounterServiceImpl::StartDraining(absl::Time give_up_at) {
  give_up_at_unix_ns_.store(absl::ToUnixNanos(give_up_at));
  draining_.store(true, std::memory_order_release);
}

void CounterServiceImpl::WaitForSnapshotWaiters() {
  std::unique_lock<std::mutex> lock(waiters_mu_);
  waiters_cv_.wait(lock, [this] { return snapshot_waiters_ == 0; });
}

grpc::ServerUnaryReactor* CounterServiceImpl::Finish(grpc::CallbackServerContext* ctx,
                                                     const absl::Status& status) {
  table_->CountCall(!status.ok());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// ---- The RPCs: drain check, Do*, Finish. ----

grpc::ServerUnaryReactor* CounterServiceImpl::Increment(grpc::CallbackServerContext* ctx,
                                                        const IncrementRequest* req,
                                                        IncrementResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoIncrement(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::IncrementBatch(grpc::CallbackServerContext* ctx,
                                                             const IncrementBatchRequest* req,
                                                             IncrementBatchResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoIncrementBatch(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::Get(grpc::CallbackServerContext* ctx,
                                                  const GetRequest* req, GetResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoGet(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::BatchGet(grpc::CallbackServerContext* ctx,
                                                       const BatchGetRequest* req,
                                                       BatchGetResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoBatchGet(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::List(grpc::CallbackServerContext* ctx,
                                                   const ListRequest* req, ListResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoList(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::Set(grpc::CallbackServerContext* ctx,
                                                  const SetRequest* req, SetResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoSet(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::CompareAndSet(grpc::CallbackServerContext* ctx,
                                                            const CompareAndSetRequest* req,
                                                            CompareAndSetResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoCompareAndSet(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::Delete(grpc::CallbackServerContext* ctx,
                                                     const DeleteRequest* req,
                                                     DeleteResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoDelete(*req, resp));
}
grpc::ServerUnaryReactor* CounterServiceImpl::GetStats(grpc::CallbackServerContext* ctx,
                                                       const GetStatsRequest*,
                                                       GetStatsResponse* resp) {
  return Finish(ctx, draining() ? kDraining : DoGetStats(resp));
}

grpc::ServerUnaryReactor* CounterServiceImpl::Snapshot(grpc::CallbackServerContext* ctx,
                                                       const SnapshotRequest*,
                                                       SnapshotResponse* resp) {
  if (draining()) return Finish(ctx, kDraining);
  absl::Time client_deadline = absl::InfiniteFuture();
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    client_deadline = absl::FromChrono(ctx->deadline());
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    ++snapshot_waiters_;
  }
  // The wait can take as long as writing a snapshot; keep it off the
  // callback threads. The reactor and response stay valid until Finish.
  std::thread([this, reactor, client_deadline, resp] {
    absl::Status status = DoSnapshot(client_deadline, resp);
    table_->CountCall(!status.ok());
    reactor->Finish(ToGrpcStatus(status));
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (--snapshot_waiters_ == 0) waiters_cv_.notify_all();
  }).detach();
  return reactor;
}

// ---- Request handling. ----

absl::Status CounterServiceImpl::DoIncrement(const IncrementRequest& req, IncrementResponse* resp) {
  ASSIGN_OR_RETURN(int64_t value, table_->Increment(req.key(), req.has_delta() ? req.delta() : 1));
  resp->set_value(value);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoIncrementBatch(const IncrementBatchRequest& req,
                                                  IncrementBatchResponse* resp) {
  const size_t n = static_cast<size_t>(req.increments_size());
  if (n == 0) return absl::InvalidArgumentError("increments is empty");
  if (n > max_batch_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "batch of ", n, " increments exceeds the server's limit (--max-batch=", max_batch_, ")"));
  }
  std::vector<CounterTable::IncrementOp> ops;
  ops.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const IncrementRequest& inc = req.increments(static_cast<int>(i));
    if (absl::Status s = ValidateKey(inc.key()); !s.ok()) return AtIndex(s, "increments", i);
    ops.push_back({inc.key(), inc.has_delta() ? inc.delta() : 1});
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> values, table_->IncrementBatch(ops));
  resp->mutable_values()->Assign(values.begin(), values.end());
  return absl::OkStatus();
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
  for (size_t i = 0; i < n; ++i) {
    if (absl::Status s = ValidateKey(req.keys(static_cast<int>(i))); !s.ok()) {
      return AtIndex(s, "keys", i);
    }
  }
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
  if (req.prefix().size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("prefix is ", req.prefix().size(),
                                                   " bytes; keys are at most ", kMaxKeyBytes));
  }
  if (req.page_size() < 0) return absl::InvalidArgumentError("page_size must not be negative");
  size_t limit = req.page_size() == 0 ? kDefaultPageSize
                                      : std::min<size_t>(req.page_size(), kMaxPageSize);
  if (!req.page_token().empty()) {
    if (!ValidateKey(req.page_token()).ok() ||
        req.page_token().compare(0, req.prefix().size(), req.prefix()) != 0) {
      return absl::InvalidArgumentError(
          "malformed page_token: pass the next_page_token of the previous page of the same "
          "listing (same prefix)");
    }
  }
  std::vector<Counter> page = table_->List(req.prefix(), req.page_token(), limit + 1);
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
  ASSIGN_OR_RETURN(std::optional<int64_t> previous, table_->Set(req.key(), req.value()));
  if (previous) resp->set_previous_value(*previous);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoCompareAndSet(const CompareAndSetRequest& req,
                                                 CompareAndSetResponse* resp) {
  ASSIGN_OR_RETURN(CounterTable::CasResult r,
                   table_->CompareAndSet(req.key(), req.expected(), req.value()));
  resp->set_applied(r.applied);
  resp->set_value(r.value);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoDelete(const DeleteRequest& req, DeleteResponse* resp) {
  ASSIGN_OR_RETURN(int64_t previous, table_->Delete(req.key()));
  resp->set_previous_value(previous);
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoSnapshot(absl::Time client_deadline, SnapshotResponse* resp) {
  const absl::Time cap = absl::Now() + kSnapshotWaitCap;
  const absl::Time deadline = std::min(cap, client_deadline);
  SnapshotControl& control = table_->snapshot_control();
  const uint32_t my = control.request_seq.fetch_add(1) + 1;
  FutexWakeAll(&control.request_seq);
  while (true) {
    uint32_t done = control.done_seq.load(std::memory_order_acquire);
    if (static_cast<int32_t>(done - my) >= 0) break;
    absl::Time now = absl::Now();
    absl::Time give_up = absl::FromUnixNanos(give_up_at_unix_ns_.load());
    if (now >= give_up) return kDraining;
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
        "the snapshot failed to reach disk (msync/fsync error, see the daemon log); the previous "
        "snapshot stays valid");
  }
  resp->set_generation(control.generation.load(std::memory_order_acquire));
  resp->set_counters(control.counters.load(std::memory_order_relaxed));
  resp->set_bytes(control.bytes.load(std::memory_order_relaxed));
  return absl::OkStatus();
}

absl::Status CounterServiceImpl::DoGetStats(GetStatsResponse* resp) {
  for (const ProcessStats& p : table_->ProcessStatsSnapshot()) {
    if (p.role != ProcessRole::kHandler) continue;
    HandlerStats* h = resp->add_handlers();
    h->set_pid(p.pid);
    h->set_calls(p.calls);
    h->set_errors(p.errors);
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
  return absl::OkStatus();
}

// ---- The process. ----

namespace {

// gRPC's own log lines go through our logger, so that every line of the
// daemon has the same format (one JSON object per line with --log-format=json).
void RouteGrpcLog(gpr_log_func_args* args) {
  LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
                   : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                             : LogLevel::kDebug;
  Log(level, absl::StrCat("grpc: ", args->message),
      {{"source", absl::StrCat(args->file, ":", args->line)}});
}

}  // namespace

int RunHandlerProcess(CounterTable* table, const HandlerOptions& options) {
  gpr_set_log_function(RouteGrpcLog);
  // Debian's Abseil checks every absl::Mutex for lock-order cycles; gRPC
  // takes several per call, and the check costs ~3% of a handler's CPU.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (absl::Status s = table->RegisterProcess(getpid(), ProcessRole::kHandler); !s.ok()) {
    Log(LogLevel::kError, "handler cannot register its stats slot", {{"error", s.ToString()}});
    return 1;
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  CounterServiceImpl service(table, options.max_batch);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError,
        "handler cannot listen: grpc::ServerBuilder::BuildAndStart failed (address in use by "
        "another process without SO_REUSEPORT, or not available on this host)",
        {{"listen", options.address}});
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(counters::v1::CounterService::service_full_name(), true);
  table->SetReady(true);
  Log(LogLevel::kDebug, "handler serving", {{"listen", options.address}});

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }

  absl::Time drain_deadline = absl::Now() + options.drain_timeout;
  table->SetReady(false);
  health->SetServingStatus(false);
  service.StartDraining(drain_deadline);
  Log(LogLevel::kDebug, "handler draining", {{"signal", sig}});
  // Calls in flight: every RPC but Snapshot finishes inside its callback, and
  // from now on they fail fast with UNAVAILABLE; Snapshot calls give up by
  // the drain deadline. gRPC's Shutdown(deadline) would also wait for every
  // idle client connection to go away, which long-lived clients never do by
  // themselves; so once our calls are done, give the rest a short grace and
  // then close what is left.
  service.WaitForSnapshotWaiters();
  server->Shutdown(absl::ToChronoTime(std::min(drain_deadline, absl::Now() + kShutdownGrace)));
  server.reset();
  Log(LogLevel::kDebug, "handler stopped");
  return 0;
}

}  // namespace countersd
