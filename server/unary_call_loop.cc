// The completion-queue serving loop: one thread, one queue.
//
// How it works. Each async unary method has an AsyncUnaryMethod: a pool of
// call objects (AsyncUnaryMethod::Call), of which a few are posted on the
// queue (Request<Method>), some are being answered (their Finish pending),
// and the rest wait on a free list. The serving thread loops on
// cq->AsyncNext() with a deadline of one heartbeat interval, and at every
// turn (a completion, or the deadline with none) stores the time in the
// process's heartbeat (CounterTable::Heartbeat): so an idle handler beats
// too, and one whose loop stops turning (the process stopped, or the thread
// stuck in a call or in gRPC) is found by the supervisor
// (child_liveness.cc). It costs one coarse clock read (vDSO, 33 ns on the
// 2-core VM) and one relaxed store per turn; the wait's deadline, which
// needs gRPC's precise clock (204 ns there), is renewed only every half
// interval, so an idle loop turns every half to whole interval. On each
// completion:
//   1. A posted call arrives (ok): post another one in its place (from the
//      free list, or a new one when the list is empty) unless the method is
//      at its bound, then handle the call inline: decode the request
//      (CounterService methods, below), CounterServiceImpl::HandleCall
//      (drain check, access check, Do*, CountCall), serialize the
//      response, and Finish with the status mapped by ToGrpcStatus. List
//      alone is not prepared here: the call is handed to the loop's
//      LowPriorityCalls thread (low_priority_calls.cc: why, and what bounds
//      it), which decodes, checks access, runs DoList and serializes, then
//      hands it back with an alarm on this queue (1b.), and the serving
//      thread Finishes it as above. So that thread never runs a page, and
//      the List thread touches no call state of gRPC's but the alarm and
//      the call's context (its metadata and auth context, for the access
//      check), which the serving thread leaves alone until the alarm.
//      A durable write (WriteOptions.durable) is not Finished at once: its
//      record goes to the handler's GroupCommit, whose commit thread hands
//      the call back with an alarm once the record is synced (1c.), OK or
//      INTERNAL, and the serving thread Finishes it.
//   2. Its Finish completes (ok or not: the client may have gone): clear the
//      call's messages, buffers and context; post it again if the method has
//      fewer than its `posted` calls waiting, else keep it on the free list
//      if the list is short, else free it.
//   3. A posted call comes back not ok: the server is shutting down; it is
//      freed, not posted again.
//   4. The stop tag (Stop()'s alarm, after the server's Shutdown): shut the
//      queue down; AsyncNext() then drains what is left and returns
//      SHUTDOWN, and the free lists are freed.
// The CounterService methods are raw (WithRawMethod_*, counter_service.h):
// gRPC hands the call the request's bytes (a grpc::ByteBuffer, the
// received slices, not copied) and sends the bytes the call gives it. The
// call decodes them itself (DecodeRequest, request_decoding.h: gRPC's
// ProtoBufferReader into the reused request message, as gRPC's typed path
// does) and serializes its response with gRPC's SerializationTraits. This is
// what lets a request that does not parse (a string field that is not
// UTF-8, a malformed message) get INVALID_ARGUMENT naming what is wrong:
// gRPC's typed async path cancels such a call with INTERNAL "Unable to
// parse request" before any of our code runs. A request that fails to
// decode is answered through CounterServiceImpl::RejectCall (counted as an
// error in the stats slot; no Do* runs). Health's Check stays typed (a
// standard service whose one string field gRPC's health clients fill).
// Health (health_service.h) shares the queue: its Check is one more
// AsyncUnaryMethod, its Watch streams and its NOT_SERVING alarm are tags of
// their own (HealthServiceImpl::StartServing). So are IncrementStream's
// streams and their drain alarm (increment_stream.h, bounded there).
// Only the serving thread posts and shuts the queue down, so nothing is ever
// posted on a queue already shut down. The messages keep their allocations
// across calls (Clear() keeps repeated fields' capacity).
//
// The bounds of the pool, per method (MethodBounds below), and why:
//  - `max_calls`: at most this many call objects exist (posted + being
//    answered + free). A call is answered inline, so only calls whose Finish
//    is still being written count as in flight; while a method is at its
//    bound nothing more is posted, and gRPC holds the further streams itself
//    (bounded per connection by GRPC_ARG_MAX_CONCURRENT_STREAMS, and in bytes
//    by the server's ResourceQuota) until a Finish completes and the call is
//    posted again. This bounds our objects only: under a rapid-reset flood
//    (HEADERS then RST_STREAM) gRPC 1.51 queues each reset stream's call
//    arena (~11 KB) unmatched in its server's request matcher while this
//    thread is kept inside the transport's read loop, and neither this pool
//    (1,024 posted made no difference) nor the quota bounds that; see the
//    top of tests/abuse/abuse_test.cc's rapid-reset test for the
//    measurements. Streams opened without a reset are refused past
//    GRPC_ARG_MAX_CONCURRENT_STREAMS and need no bound here.
//  - `max_free`: at most this many idle calls are kept beyond the posted
//    ones, so that after a burst the pool shrinks back to posted + max_free
//    and gives the memory back, while a steady load still reuses its calls.
//  - `posted`: calls kept posted so that a burst on a connection is matched
//    without waiting for the thread to post more.
#include "server/unary_call_loop.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "grpc/support/time.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "proto/status_conversion.h"
#include "server/health_service.h"
#include "server/group_commit.h"
#include "server/increment_stream.h"
#include "server/low_priority_calls.h"
#include "server/request_decoding.h"

namespace countersd {
namespace {

using namespace counters::v1;  // NOLINT: the RPC message types

struct MethodBounds {
  int posted;     // kept posted on the queue
  int max_calls;  // call objects that may exist at once
  int max_free;   // idle calls kept beyond the posted ones
};
// Increment, IncrementBatch, Get, BatchGet: the methods of the hot path.
constexpr MethodBounds kHot = {.posted = 16, .max_calls = 64, .max_free = 8};
// List, Set, CompareAndSet, Delete, GetStats, Health.Check.
constexpr MethodBounds kCold = {.posted = 2, .max_calls = 8, .max_free = 2};
constexpr int kHotMethods = 4;
constexpr int kColdMethods = 6;

// How a method's messages cross gRPC: as the typed messages (gRPC parses
// and serializes them), or raw (the call decodes and serializes them).
enum class Wire { kTyped, kRaw };

template <typename Service, typename Request, typename Response, typename Handle, Wire kWire>
class AsyncUnaryMethod {
 public:
  static constexpr bool kRaw = kWire == Wire::kRaw;
  // What gRPC reads the request into and writes the response from.
  using WireRequest = std::conditional_t<kRaw, grpc::ByteBuffer, Request>;
  using WireResponse = std::conditional_t<kRaw, grpc::ByteBuffer, Response>;
  using RequestFn = void (Service::*)(grpc::ServerContext*, WireRequest*,
                                      grpc::ServerAsyncResponseWriter<WireResponse>*,
                                      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);

  // `offload`: where the method's calls are prepared (raw methods only), or
  // null: on the serving thread.
  AsyncUnaryMethod(UnaryCallLoop* loop, Service* service, grpc::ServerCompletionQueue* cq,
                   RequestFn request, Handle handle, MethodBounds bounds,
                   LowPriorityCalls* offload = nullptr)
      : loop_(loop),
        service_(service),
        cq_(cq),
        request_(request),
        handle_(handle),
        bounds_(bounds),
        offload_(offload) {
    for (int i = 0; i < bounds_.posted; ++i) Post(nullptr);
  }
  ~AsyncUnaryMethod() {
    // Every posted or answered call has come back by now (the queue is
    // drained); what is left is the free list.
    for (Call* c : free_) Free(c);
  }
  AsyncUnaryMethod(const AsyncUnaryMethod&) = delete;
  AsyncUnaryMethod& operator=(const AsyncUnaryMethod&) = delete;

  void Stop() { stopped_ = true; }

 private:
  class Call final : public AsyncTag {
   public:
    explicit Call(AsyncUnaryMethod* method) : method_(method) {
      if (method_->offload_ != nullptr) handed_back_.emplace();
    }

    void Listen() {
      replying_ = false;
      ctx_.emplace();
      writer_.emplace(&*ctx_);
      WireRequest* wire_request;
      if constexpr (kRaw) {
        wire_request = &payload_;
      } else {
        wire_request = &req_;
      }
      (method_->service_->*method_->request_)(&*ctx_, wire_request, &*writer_, method_->cq_,
                                              method_->cq_, this);
    }

    void Proceed(bool ok) override {
      AsyncUnaryMethod* const m = method_;
      if constexpr (kRaw) {
        // A durable write handed back by the commit thread (1c.): what it
        // wrote, ThreadSanitizer-visibly.
        durable_done_.load(std::memory_order_acquire);
      }
      if constexpr (kRaw) {
        if (awaiting_durable_) {  // 1c. handed back by the commit thread
          awaiting_durable_ = false;
          Reply();
          return;
        }
      }
      if (replying_) {  // 2.
        writer_.reset();
        ctx_.reset();
        req_.Clear();
        resp_.Clear();
        if constexpr (kRaw) {
          payload_.Clear();
          reply_.Clear();
        }
        m->Finished(this);
        return;
      }
      if constexpr (kRaw) {
        if (handed_over_) {  // 1b. prepared on the List thread (its alarm, on this queue)
          handed_over_ = false;
          prepared_.load(std::memory_order_acquire);  // what it wrote, ThreadSanitizer-visibly
          Reply();
          return;
        }
      }
      --m->posted_;
      if (!ok) {  // 3.
        m->Free(this);
        return;
      }
      if (m->posted_ < m->bounds_.posted) m->Post(nullptr);  // 1.
      if constexpr (kRaw) {
        if (m->offload_ != nullptr) {
          handed_over_ = true;
          m->offload_->Submit([this] {
            Prepare();
            prepared_.store(true, std::memory_order_release);
            handed_back_->Set(method_->cq_, gpr_now(GPR_CLOCK_MONOTONIC), this);
          });
          return;
        }
        Prepare();
        // 1c. A durable write is answered once its record is durable: the
        // commit thread (group_commit.h) hands the call back with an alarm
        // due in the infinite past, which fires at once (one due "now"
        // waits for gRPC's next timer tick: a millisecond, ten syncs of a
        // fast disk), and this thread Finishes it, as for List (1b.): gRPC
        // orders a Finish made on another thread through its own,
        // uninstrumented locks, which ThreadSanitizer cannot see.
        if (std::optional<CounterServiceImpl::DurableWrite> durable =
                m->handle_.TakeDurableWrite()) {
          awaiting_durable_ = true;
          if (!durable_alarm_) durable_alarm_.emplace();
          const WalRecord record = std::move(durable->record);
          m->loop_->group_commit()->Append(record, [this, counted = *std::move(durable)](
                                                       absl::Status st) {
            method_->handle_.CountDurableWrite(counted, st);
            if (!st.ok()) {
              reply_status_ = ToGrpcStatus(st);
              reply_.Clear();
            }
            durable_done_.store(true, std::memory_order_release);
            durable_alarm_->Set(method_->cq_, gpr_inf_past(GPR_CLOCK_MONOTONIC), this);
          });
          return;
        }
        Reply();
      } else {
        replying_ = true;
        absl::Status status = m->handle_(req_, &resp_);
        writer_->Finish(resp_, ToGrpcStatus(status), this);
      }
    }

   private:
    // Raw methods: decodes the request, checks access and handles it,
    // serializes the reply. Touches only the messages, buffers,
    // reply_status_ and the call's context (read), so it may run on the List
    // thread while the serving thread goes on.
    void Prepare() {
      AsyncUnaryMethod* const m = method_;
      absl::Status status = DecodeRequest(&payload_, &req_);
      status = status.ok() ? m->handle_(*ctx_, req_, &resp_)
                           : m->handle_.Reject(*ctx_, std::move(status));
      reply_status_ = ToGrpcStatus(status);
      if (reply_status_.ok()) {
        bool own_buffer;
        reply_status_ = grpc::SerializationTraits<Response>::Serialize(resp_, &reply_, &own_buffer);
      }
    }
    void Reply() {
      replying_ = true;
      writer_->Finish(reply_, reply_status_, this);  // a non-OK status sends no message
    }

    AsyncUnaryMethod* const method_;
    std::optional<grpc::ServerContext> ctx_;
    std::optional<grpc::ServerAsyncResponseWriter<WireResponse>> writer_;
    Request req_;
    Response resp_;
    // Raw methods: the request's bytes as received, and the response's.
    grpc::ByteBuffer payload_;
    grpc::ByteBuffer reply_;
    grpc::Status reply_status_;
    bool replying_ = false;
    // Offloaded methods: the call is on the List thread (serving thread
    // only); the alarm by which that thread hands it back to this queue; the
    // release/acquire pair that orders what it wrote before this thread
    // Finishes (gRPC's queue orders it too, but in code ThreadSanitizer does
    // not see).
    bool handed_over_ = false;
    std::optional<grpc::Alarm> handed_back_;
    std::atomic<bool> prepared_{false};
    // A durable write waiting for its record's sync (1c.): the
    // release/acquire pair that orders what the commit thread wrote before
    // this thread goes on with the call, and the alarm that hands it back.
    std::atomic<bool> durable_done_{false};
    bool awaiting_durable_ = false;
    std::optional<grpc::Alarm> durable_alarm_;
  };

  // Posts `call`, or a call from the free list, or a new one; nothing at the
  // bound or once stopped.
  void Post(Call* call) {
    if (stopped_) {
      if (call != nullptr) Free(call);
      return;
    }
    if (call == nullptr) {
      if (!free_.empty()) {
        call = free_.back();
        free_.pop_back();
      } else if (calls_ < bounds_.max_calls) {
        call = new Call(this);
        ++calls_;
        loop_->CallMade();
      } else {
        return;  // at the bound: gRPC holds the stream until a call is free
      }
    }
    ++posted_;
    call->Listen();
  }

  void Finished(Call* call) {
    if (!stopped_ && posted_ < bounds_.posted) {
      Post(call);
    } else if (!stopped_ && static_cast<int>(free_.size()) < bounds_.max_free) {
      free_.push_back(call);
    } else {
      Free(call);
    }
  }

  void Free(Call* call) {
    delete call;
    --calls_;
    loop_->CallFreed();
  }

  UnaryCallLoop* const loop_;
  Service* const service_;
  grpc::ServerCompletionQueue* const cq_;
  const RequestFn request_;
  const Handle handle_;
  const MethodBounds bounds_;
  LowPriorityCalls* const offload_;
  bool stopped_ = false;
  int calls_ = 0;   // call objects of this method that exist
  int posted_ = 0;  // of which posted on the queue
  std::vector<Call*> free_;
};

// A typed method. `Owner`: the generated base class that declares
// Request<Method>.
template <typename Service, typename Owner, typename Request, typename Response, typename Handle>
std::unique_ptr<AsyncUnaryMethod<Service, Request, Response, Handle, Wire::kTyped>> MakeTypedMethod(
    UnaryCallLoop* loop, Service* service, grpc::ServerCompletionQueue* cq,
    void (Owner::*request)(grpc::ServerContext*, Request*,
                           grpc::ServerAsyncResponseWriter<Response>*, grpc::CompletionQueue*,
                           grpc::ServerCompletionQueue*, void*),
    Handle handle, MethodBounds bounds) {
  return std::make_unique<AsyncUnaryMethod<Service, Request, Response, Handle, Wire::kTyped>>(
      loop, service, cq, request, handle, bounds);
}

// The handling of a CounterService call: HandleCall of its Do* method, or
// RejectCall of a request that did not decode.
template <typename Request, typename Response>
struct CounterCall {
  // The call's context: who it is, for the access checks (access_control.h).
  absl::Status operator()(const grpc::ServerContext& ctx, const Request& req,
                          Response* resp) const {
    return service->HandleCall(handle, &ctx, req, resp);
  }
  absl::Status Reject(const grpc::ServerContext& ctx, absl::Status decode_error) const {
    return service->RejectCall<Request>(&ctx, std::move(decode_error));
  }
  std::optional<CounterServiceImpl::DurableWrite> TakeDurableWrite() const {
    return service->TakeDurableWrite();
  }
  void CountDurableWrite(const CounterServiceImpl::DurableWrite& write,
                         const absl::Status& outcome) const {
    service->CountDurableWrite(write, outcome);
  }
  CounterServiceImpl* service;
  CounterServiceImpl::DoMethod<Request, Response> handle;
};

// A CounterService method, raw: its request and response types are those of
// its Do* method.
template <typename Owner, typename Request, typename Response>
auto MakeCounterMethod(UnaryCallLoop* loop, CounterServiceImpl* service,
                       grpc::ServerCompletionQueue* cq,
                       void (Owner::*request)(grpc::ServerContext*, grpc::ByteBuffer*,
                                              grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>*,
                                              grpc::CompletionQueue*,
                                              grpc::ServerCompletionQueue*, void*),
                       CounterServiceImpl::DoMethod<Request, Response> handle, MethodBounds bounds,
                       LowPriorityCalls* offload = nullptr) {
  using Method = AsyncUnaryMethod<CounterServiceBase, Request, Response,
                                  CounterCall<Request, Response>, Wire::kRaw>;
  return std::make_unique<Method>(loop, static_cast<CounterServiceBase*>(service), cq, request,
                                  CounterCall<Request, Response>{service, handle}, bounds, offload);
}

// The stop tag: its address is the tag; it is never dereferenced.
char stop_tag;

}  // namespace

UnaryCallLoop::UnaryCallLoop(CounterServiceImpl* service, HealthServiceImpl* health,
                             IncrementStreams* streams, grpc::ServerCompletionQueue* cq,
                             LoopHeartbeat heartbeat, LowPriorityCalls* list_calls,
                             GroupCommit* group_commit)
    : service_(service),
      health_(health),
      streams_(streams),
      cq_(cq),
      heartbeat_(heartbeat),
      list_calls_(list_calls),
      group_commit_(group_commit) {}

size_t UnaryCallLoop::MaxCalls() {
  return kHotMethods * kHot.max_calls + kColdMethods * kCold.max_calls;
}
size_t UnaryCallLoop::MaxIdleCalls() {
  return kHotMethods * (kHot.posted + kHot.max_free) +
         kColdMethods * (kCold.posted + kCold.max_free);
}

size_t UnaryCallLoop::PostedCalls() {
  return kHotMethods * kHot.posted + kColdMethods * kCold.posted;
}

size_t UnaryCallLoop::MaxFreeCallsPerMethod() { return std::max(kHot.max_free, kCold.max_free); }

void UnaryCallLoop::CallMade() {
  size_t now = calls_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (now > peak_calls_.load(std::memory_order_relaxed)) {
    peak_calls_.store(now, std::memory_order_relaxed);  // only the serving thread writes
  }
}

void UnaryCallLoop::Run() {
  CounterServiceImpl* const s = service_;
  grpc::ServerCompletionQueue* const cq = cq_;
  using Base = CounterServiceBase;
  using Impl = CounterServiceImpl;
  auto increment =
      MakeCounterMethod(this, s, cq, &Base::RequestIncrement, &Impl::DoIncrement, kHot);
  auto increment_batch = MakeCounterMethod(this, s, cq, &Base::RequestIncrementBatch,
                                           &Impl::DoIncrementBatch, kHot);
  auto get = MakeCounterMethod(this, s, cq, &Base::RequestGet, &Impl::DoGet, kHot);
  auto batch_get =
      MakeCounterMethod(this, s, cq, &Base::RequestBatchGet, &Impl::DoBatchGet, kHot);
  auto list = MakeCounterMethod(this, s, cq, &Base::RequestList, &Impl::DoList, kCold, list_calls_);
  auto set = MakeCounterMethod(this, s, cq, &Base::RequestSet, &Impl::DoSet, kCold);
  auto compare_and_set = MakeCounterMethod(this, s, cq, &Base::RequestCompareAndSet,
                                           &Impl::DoCompareAndSet, kCold);
  auto del = MakeCounterMethod(this, s, cq, &Base::RequestDelete, &Impl::DoDelete, kCold);
  auto get_stats =
      MakeCounterMethod(this, s, cq, &Base::RequestGetStats, &Impl::DoGetStats, kCold);
  HealthServiceImpl* const health = health_;
  using HealthBase = HealthServiceImpl::AsyncBase;
  std::unique_ptr<AsyncUnaryMethod<HealthBase, grpc::health::v1::HealthCheckRequest,
                                   grpc::health::v1::HealthCheckResponse,
                                   HealthServiceImpl::CheckFn, Wire::kTyped>>
      check;
  if (health != nullptr) {
    check = MakeTypedMethod(this, static_cast<HealthBase*>(health), cq, &HealthBase::RequestCheck,
                            HealthServiceImpl::CheckFn{health}, kCold);
    health->StartServing(cq);
  }
  if (streams_ != nullptr) streams_->StartServing(cq);
  void* tag = nullptr;
  bool ok = false;
  const int64_t interval_ns = absl::ToInt64Nanoseconds(heartbeat_.interval);
  const gpr_timespec interval = gpr_time_from_nanos(interval_ns, GPR_TIMESPAN);
  gpr_timespec deadline{};
  int64_t deadline_renewed = CounterTable::HeartbeatNow() - interval_ns;  // renew at once
  while (true) {
    const int64_t now = CounterTable::HeartbeatNow();
    if (heartbeat_.table != nullptr) heartbeat_.table->Heartbeat(now);
    if (now - deadline_renewed >= interval_ns / 2) {
      deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), interval);
      deadline_renewed = now;
    }
    grpc::CompletionQueue::NextStatus next = cq->AsyncNext(&tag, &ok, deadline);
    if (next == grpc::CompletionQueue::SHUTDOWN) break;
    if (next == grpc::CompletionQueue::TIMEOUT) continue;
    if (tag == &stop_tag) {  // 4.
      increment->Stop();
      increment_batch->Stop();
      get->Stop();
      batch_get->Stop();
      list->Stop();
      set->Stop();
      compare_and_set->Stop();
      del->Stop();
      get_stats->Stop();
      if (check) check->Stop();
      if (health != nullptr) health->StopServing();
      if (streams_ != nullptr) streams_->StopServing();
      cq->Shutdown();
      continue;
    }
    static_cast<AsyncTag*>(tag)->Proceed(ok);
  }
}

void UnaryCallLoop::Stop() { stop_alarm_.Set(cq_, gpr_now(GPR_CLOCK_MONOTONIC), &stop_tag); }

}  // namespace countersd
