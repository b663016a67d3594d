#include "server/handler.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpc/support/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "server/status_mapping.h"
#include "shared/abseil_string_view.h"
#include "shared/key.h"
#include "shared/log.h"
#include "shared/status_macros.h"

namespace countersd {
namespace {

using namespace counters::v1;  // NOLINT: the RPC message types

// How long a draining handler keeps connections open once its own calls
// are done (responses still being written, calls not yet dispatched).
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(250);

const absl::Status kDraining =
    absl::UnavailableError("countersd is shutting down; retry elsewhere");

absl::Status AtIndex(const absl::Status& s, std::string_view what, size_t i) {
  return absl::Status(s.code(), absl::StrCat(Sv(what), "[", i, "]: ", s.message()));
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

// ---- The async RPCs: one thread, one completion queue. ----
//
// How it works. Each async method has an AsyncUnaryMethod: a pool of call
// objects (AsyncUnaryMethod::Call) of which a few are always posted on the queue
// (Request<Method>) and the rest wait on a free list. The serving thread
// loops on cq->Next():
//   1. A posted call arrives (ok): post another one in its place (from the
//      free list, or a new one when the list is empty), then handle the call
//      inline: drain check, Do*, CountCall, and Finish with the mapped status.
//   2. Its Finish completes (ok or not: the client may have gone): clear the
//      call's messages and context and put it back on the free list.
//   3. A posted call comes back not ok: the server is shutting down; it is
//      not posted again.
//   4. The stop tag (StopServingCompletionQueue's alarm, after the server's
//      Shutdown): shut the queue down; Next() then drains what is left and
//      returns false, and the pools are freed.
// Only the serving thread posts and shuts the queue down, so nothing is ever
// posted on a queue already shut down. The messages keep their allocations
// across calls (Clear() keeps repeated fields' capacity).

class AsyncTag {
 public:
  virtual ~AsyncTag() = default;
  // The completion of this tag's pending operation.
  virtual void Proceed(bool ok) = 0;
};

template <typename Request, typename Response>
class AsyncUnaryMethod {
 public:
  using RequestFn = void (CounterServiceBase::*)(grpc::ServerContext*, Request*,
                                                 grpc::ServerAsyncResponseWriter<Response>*,
                                                 grpc::CompletionQueue*,
                                                 grpc::ServerCompletionQueue*, void*);
  using DoFn = absl::Status (CounterServiceImpl::*)(const Request&, Response*);

  AsyncUnaryMethod(CounterServiceImpl* service, grpc::ServerCompletionQueue* cq, RequestFn request,
                   DoFn handle, int posted)
      : service_(service), cq_(cq), request_(request), handle_(handle) {
    for (int i = 0; i < posted; ++i) Post();
  }
  bool* stopped() { return &stopped_; }

 private:
  class Call final : public AsyncTag {
   public:
    explicit Call(AsyncUnaryMethod* method) : method_(method) {}

    void Listen() {
      replying_ = false;
      ctx_.emplace();
      writer_.emplace(&*ctx_);
      (method_->service_->*method_->request_)(&*ctx_, &req_, &*writer_, method_->cq_, method_->cq_,
                                              this);
    }

    void Proceed(bool ok) override {
      if (replying_) {  // 2.
        writer_.reset();
        ctx_.reset();
        req_.Clear();
        resp_.Clear();
        method_->free_.push_back(this);
        return;
      }
      if (!ok) return;  // 3. freed with the pool
      method_->Post();  // 1.
      CounterServiceImpl* service = method_->service_;
      absl::Status status =
          service->draining() ? kDraining : (service->*method_->handle_)(req_, &resp_);
      service->table_->CountCall(!status.ok());
      replying_ = true;
      writer_->Finish(resp_, ToGrpcStatus(status), this);
    }

   private:
    AsyncUnaryMethod* const method_;
    std::optional<grpc::ServerContext> ctx_;
    std::optional<grpc::ServerAsyncResponseWriter<Response>> writer_;
    Request req_;
    Response resp_;
    bool replying_ = false;
  };

  void Post() {
    if (stopped_) return;
    Call* call;
    if (free_.empty()) {
      calls_.push_back(std::make_unique<Call>(this));
      call = calls_.back().get();
    } else {
      call = free_.back();
      free_.pop_back();
    }
    call->Listen();
  }

  CounterServiceImpl* const service_;
  grpc::ServerCompletionQueue* const cq_;
  const RequestFn request_;
  const DoFn handle_;
  bool stopped_ = false;
  std::vector<std::unique_ptr<Call>> calls_;  // every call, posted, in flight or free
  std::vector<Call*> free_;
};

namespace {

// Calls kept posted per method: enough that a burst of calls on a
// connection is matched without waiting for the thread to post more.
constexpr int kPostedPerMethod = 16;
constexpr int kPostedCold = 2;  // List, Set, CompareAndSet, Delete, GetStats

// The stop tag: its address is the tag; it is never dereferenced.
char stop_tag;

}  // namespace

void CounterServiceImpl::ServeCompletionQueue(grpc::ServerCompletionQueue* cq) {
  AsyncUnaryMethod<IncrementRequest, IncrementResponse> increment(
      this, cq, &CounterServiceBase::RequestIncrement, &CounterServiceImpl::DoIncrement,
      kPostedPerMethod);
  AsyncUnaryMethod<IncrementBatchRequest, IncrementBatchResponse> increment_batch(
      this, cq, &CounterServiceBase::RequestIncrementBatch, &CounterServiceImpl::DoIncrementBatch,
      kPostedPerMethod);
  AsyncUnaryMethod<GetRequest, GetResponse> get(this, cq, &CounterServiceBase::RequestGet,
                                                &CounterServiceImpl::DoGet, kPostedPerMethod);
  AsyncUnaryMethod<BatchGetRequest, BatchGetResponse> batch_get(
      this, cq, &CounterServiceBase::RequestBatchGet, &CounterServiceImpl::DoBatchGet,
      kPostedPerMethod);
  AsyncUnaryMethod<ListRequest, ListResponse> list(this, cq, &CounterServiceBase::RequestList,
                                                   &CounterServiceImpl::DoList, kPostedCold);
  AsyncUnaryMethod<SetRequest, SetResponse> set(this, cq, &CounterServiceBase::RequestSet,
                                                &CounterServiceImpl::DoSet, kPostedCold);
  AsyncUnaryMethod<CompareAndSetRequest, CompareAndSetResponse> compare_and_set(
      this, cq, &CounterServiceBase::RequestCompareAndSet, &CounterServiceImpl::DoCompareAndSet,
      kPostedCold);
  AsyncUnaryMethod<DeleteRequest, DeleteResponse> del(this, cq, &CounterServiceBase::RequestDelete,
                                                      &CounterServiceImpl::DoDelete, kPostedCold);
  AsyncUnaryMethod<GetStatsRequest, GetStatsResponse> get_stats(
      this, cq, &CounterServiceBase::RequestGetStats, &CounterServiceImpl::DoGetStats, kPostedCold);
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    if (tag == &stop_tag) {  // 4.
      for (bool* stopped : {increment.stopped(), increment_batch.stopped(), get.stopped(),
                            batch_get.stopped(), list.stopped(), set.stopped(),
                            compare_and_set.stopped(), del.stopped(), get_stats.stopped()}) {
        *stopped = true;
      }
      cq->Shutdown();
      continue;
    }
    static_cast<AsyncTag*>(tag)->Proceed(ok);
  }
}

void CounterServiceImpl::StopServingCompletionQueue(grpc::ServerCompletionQueue* cq) {
  stop_alarm_.Set(cq, gpr_now(GPR_CLOCK_MONOTONIC), &stop_tag);
}

// ---- Snapshot: a sync RPC (it blocks until the snapshot is durable). ----

grpc::Status CounterServiceImpl::Snapshot(grpc::ServerContext* ctx, const SnapshotRequest*,
                                          SnapshotResponse* resp) {
  if (draining()) {
    table_->CountCall(true);
    return ToGrpcStatus(kDraining);
  }
  absl::Time client_deadline = absl::InfiniteFuture();
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    client_deadline = absl::FromChrono(ctx->deadline());
  }
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    ++snapshot_waiters_;
  }
  absl::Status status = DoSnapshot(client_deadline, resp);
  table_->CountCall(!status.ok());
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (--snapshot_waiters_ == 0) waiters_cv_.notify_all();
  }
  return ToGrpcStatus(status);
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
  std::vector<CounterTable::KeyDelta> ops;
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

absl::Status CounterServiceImpl::DoGetStats(const GetStatsRequest&, GetStatsResponse* resp) {
  return DoGetStats(resp);
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

// ---- grpc.health.v1.Health ----

namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

bool IsKnownService(const std::string& service) {
  return service.empty() || service == counters::v1::CounterService::service_full_name();
}

}  // namespace

void HealthServiceImpl::SetNotServing() {
  std::lock_guard<std::mutex> lock(mu_);
  serving_ = false;
  changed_.notify_all();
}

grpc::Status HealthServiceImpl::Check(grpc::ServerContext*, const HealthCheckRequest* req,
                                      HealthCheckResponse* resp) {
  if (!IsKnownService(req->service())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown service '", req->service(), "'"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  resp->set_status(serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  return grpc::Status::OK;
}

grpc::Status HealthServiceImpl::Watch(grpc::ServerContext* ctx, const HealthCheckRequest* req,
                                      grpc::ServerWriter<HealthCheckResponse>* writer) {
  const bool known = IsKnownService(req->service());
  HealthCheckResponse resp;
  std::unique_lock<std::mutex> lock(mu_);
  bool sent = false;
  while (true) {
    HealthCheckResponse::ServingStatus now = !known     ? HealthCheckResponse::SERVICE_UNKNOWN
                                             : serving_ ? HealthCheckResponse::SERVING
                                                        : HealthCheckResponse::NOT_SERVING;
    if (!sent || now != resp.status()) {
      resp.set_status(now);
      lock.unlock();
      if (!writer->Write(resp)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
      lock.lock();
      sent = true;
      if (now == HealthCheckResponse::NOT_SERVING) return grpc::Status::OK;  // final
    }
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
    changed_.wait_for(lock, std::chrono::seconds(1));
  }
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
  // Not gRPC's default health service: it is a callback service (see
  // handler.h).
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  CounterServiceImpl service(table, options.max_batch);
  HealthServiceImpl health;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError,
        "handler cannot listen: grpc::ServerBuilder::BuildAndStart failed (address in use by "
        "another process without SO_REUSEPORT, or not available on this host)",
        {{"listen", options.address}});
    cq->Shutdown();
    void* tag;
    bool ok;
    while (cq->Next(&tag, &ok)) {
    }
    return 1;
  }
  std::thread serving([&service, &cq] { service.ServeCompletionQueue(cq.get()); });
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
  health.SetNotServing();
  service.StartDraining(drain_deadline);
  Log(LogLevel::kDebug, "handler draining", {{"signal", sig}});
  // Calls in flight: every RPC but Snapshot finishes inline on the serving
  // thread, and from now on they fail fast with UNAVAILABLE; Snapshot calls
  // give up by the drain deadline. gRPC's Shutdown(deadline) would also wait
  // for every idle client connection to go away, which long-lived clients
  // never do by themselves; so once our calls are done, give the rest a
  // short grace and then close what is left.
  service.WaitForSnapshotWaiters();
  // The serving thread keeps polling through Shutdown (it completes the
  // async calls still in flight); then it shuts the queue down and drains it.
  server->Shutdown(absl::ToChronoTime(std::min(drain_deadline, absl::Now() + kShutdownGrace)));
  service.StopServingCompletionQueue(cq.get());
  serving.join();
  server.reset();
  cq.reset();
  Log(LogLevel::kDebug, "handler stopped");
  return 0;
}

}  // namespace countersd
