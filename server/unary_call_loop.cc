// The completion-queue serving loop: one thread, one queue.
//
// How it works. Each async method has an AsyncUnaryMethod: a pool of call
// objects (AsyncUnaryMethod::Call) of which a few are always posted on the
// queue (Request<Method>) and the rest wait on a free list. The serving
// thread loops on cq->Next():
//   1. A posted call arrives (ok): post another one in its place (from the
//      free list, or a new one when the list is empty), then handle the call
//      inline: CounterServiceImpl::HandleCall (drain check, Do*, CountCall),
//      and Finish with the status mapped by ToGrpcStatus.
//   2. Its Finish completes (ok or not: the client may have gone): clear the
//      call's messages and context and put it back on the free list.
//   3. A posted call comes back not ok: the server is shutting down; it is
//      not posted again.
//   4. The stop tag (Stop()'s alarm, after the server's Shutdown): shut the
//      queue down; Next() then drains what is left and returns false, and the
//      pools are freed.
// Only the serving thread posts and shuts the queue down, so nothing is ever
// posted on a queue already shut down. The messages keep their allocations
// across calls (Clear() keeps repeated fields' capacity).
#include "server/unary_call_loop.h"

#include <memory>
#include <optional>
#include <vector>

#include "grpc/support/time.h"
#include "proto/status_conversion.h"

namespace countersd {
namespace {

using namespace counters::v1;  // NOLINT: the RPC message types

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
  using DoFn = CounterServiceImpl::DoMethod<Request, Response>;

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
      absl::Status status = method_->service_->HandleCall(method_->handle_, req_, &resp_);
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

// Calls kept posted per method: enough that a burst of calls on a
// connection is matched without waiting for the thread to post more.
constexpr int kPostedPerMethod = 16;
constexpr int kPostedCold = 2;  // List, Set, CompareAndSet, Delete, GetStats

// The stop tag: its address is the tag; it is never dereferenced.
char stop_tag;

}  // namespace

UnaryCallLoop::UnaryCallLoop(CounterServiceImpl* service, grpc::ServerCompletionQueue* cq)
    : service_(service), cq_(cq) {}

void UnaryCallLoop::Run() {
  CounterServiceImpl* const service = service_;
  grpc::ServerCompletionQueue* const cq = cq_;
  AsyncUnaryMethod<IncrementRequest, IncrementResponse> increment(
      service, cq, &CounterServiceBase::RequestIncrement, &CounterServiceImpl::DoIncrement,
      kPostedPerMethod);
  AsyncUnaryMethod<IncrementBatchRequest, IncrementBatchResponse> increment_batch(
      service, cq, &CounterServiceBase::RequestIncrementBatch,
      &CounterServiceImpl::DoIncrementBatch, kPostedPerMethod);
  AsyncUnaryMethod<GetRequest, GetResponse> get(service, cq, &CounterServiceBase::RequestGet,
                                                &CounterServiceImpl::DoGet, kPostedPerMethod);
  AsyncUnaryMethod<BatchGetRequest, BatchGetResponse> batch_get(
      service, cq, &CounterServiceBase::RequestBatchGet, &CounterServiceImpl::DoBatchGet,
      kPostedPerMethod);
  AsyncUnaryMethod<ListRequest, ListResponse> list(service, cq, &CounterServiceBase::RequestList,
                                                   &CounterServiceImpl::DoList, kPostedCold);
  AsyncUnaryMethod<SetRequest, SetResponse> set(service, cq, &CounterServiceBase::RequestSet,
                                                &CounterServiceImpl::DoSet, kPostedCold);
  AsyncUnaryMethod<CompareAndSetRequest, CompareAndSetResponse> compare_and_set(
      service, cq, &CounterServiceBase::RequestCompareAndSet, &CounterServiceImpl::DoCompareAndSet,
      kPostedCold);
  AsyncUnaryMethod<DeleteRequest, DeleteResponse> del(
      service, cq, &CounterServiceBase::RequestDelete, &CounterServiceImpl::DoDelete, kPostedCold);
  AsyncUnaryMethod<GetStatsRequest, GetStatsResponse> get_stats(
      service, cq, &CounterServiceBase::RequestGetStats, &CounterServiceImpl::DoGetStats,
      kPostedCold);
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

void UnaryCallLoop::Stop() { stop_alarm_.Set(cq_, gpr_now(GPR_CLOCK_MONOTONIC), &stop_tag); }

}  // namespace countersd
