// The async engine of `counterctl bench` (--api=async, the default): gRPC's
// CompletionQueue API, driven by --threads client threads of our own.
//
// How it works:
//  1. min(--threads, --concurrency) completion queues, one per client
//     thread; slot i uses queue i % threads.
//  2. A slot starts a call with PrepareAsync*/StartCall/Finish, the slot
//     itself as the tag. The response reader lives in the call's arena (no
//     heap allocation) and is dropped before the next call's context
//     replaces the previous one (ReleaseCall).
//  3. Each thread issues its slots' first calls, then loops on Next(): the
//     tag is the slot whose call finished; the thread records it (Complete)
//     and issues the slot's next call from the same thread, with no thread
//     hand-off. When a slot may issue no more, the thread stops counting it;
//     with none left it shuts its queue down and drains it.
//  4. Join() joins the threads; by then every slot has finished.
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/async_unary_call.h>

#include <algorithm>
#include <functional>
#include <thread>

#include "client/counterctl/bench_load.h"

namespace countersd::ctl {
namespace {

namespace v1 = ::counters::v1;

// A CallSlot that is its own completion-queue tag.
class AsyncCallSlot final : public CallSlot {
 public:
  AsyncCallSlot(Bench* bench, v1::CounterService::Stub* stub, grpc::CompletionQueue* cq,
                uint64_t seed)
      : CallSlot(bench, stub, seed), cq_(cq) {}

  // The status Finish() filled in for the call that just came off the queue.
  const grpc::Status& status() const { return status_; }

 private:
  // The previous call's reader lives in the previous context's call arena:
  // drop it before that context goes.
  void ReleaseCall() override {
    increment_reader_.reset();
    batch_reader_.reset();
    get_reader_.reset();
  }

  void StartRpc(RpcKind rpc) override {
    void* tag = this;
    switch (rpc) {
      case RpcKind::kIncrement:
        increment_reader_ = stub_->PrepareAsyncIncrement(&*context_, increment_request_, cq_);
        increment_reader_->StartCall();
        increment_reader_->Finish(&increment_response_, &status_, tag);
        break;
      case RpcKind::kBatch:
        batch_reader_ = stub_->PrepareAsyncIncrementBatch(&*context_, batch_request_, cq_);
        batch_reader_->StartCall();
        batch_reader_->Finish(&batch_response_, &status_, tag);
        break;
      case RpcKind::kGet:
        get_reader_ = stub_->PrepareAsyncGet(&*context_, get_request_, cq_);
        get_reader_->StartCall();
        get_reader_->Finish(&get_response_, &status_, tag);
        break;
      case RpcKind::kStream:  // not CallSlot loads (bench_stream.h)
      case RpcKind::kAccumulate:
        break;
    }
  }

  grpc::CompletionQueue* const cq_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::IncrementResponse>> increment_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::IncrementBatchResponse>> batch_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::GetResponse>> get_reader_;
};

// One client thread: starts its slots' first calls, then completes and
// re-issues until every one of its slots is finished, then shuts its queue
// down and drains it.
void RunAsyncThread(grpc::CompletionQueue* cq, const std::vector<AsyncCallSlot*>& slots) {
  size_t active = 0;
  for (AsyncCallSlot* slot : slots) active += slot->Issue() ? 1 : 0;
  void* tag;
  bool ok;
  while (active > 0 && cq->Next(&tag, &ok)) {
    AsyncCallSlot* slot = static_cast<AsyncCallSlot*>(tag);
    slot->Complete(slot->status());
    if (!slot->Issue()) --active;
  }
  cq->Shutdown();
  while (cq->Next(&tag, &ok)) {
  }
}

class AsyncEngine final : public LoadEngine {
 public:
  AsyncEngine(int64_t threads, int64_t concurrency)
      : slots_of_thread_(std::min(threads, concurrency)) {
    for (size_t t = 0; t < slots_of_thread_.size(); ++t) {
      queues_.push_back(std::make_unique<grpc::CompletionQueue>());
    }
  }

  std::unique_ptr<CallSlot> NewSlot(Bench* bench, int64_t index, v1::CounterService::Stub* stub,
                                    uint64_t seed) override {
    const size_t t = static_cast<size_t>(index) % queues_.size();
    auto slot = std::make_unique<AsyncCallSlot>(bench, stub, queues_[t].get(), seed);
    slots_of_thread_[t].push_back(slot.get());
    return slot;
  }

  void Start(const std::vector<std::unique_ptr<CallSlot>>& /*slots*/) override {
    for (size_t t = 0; t < queues_.size(); ++t) {
      threads_.emplace_back(RunAsyncThread, queues_[t].get(), std::cref(slots_of_thread_[t]));
    }
  }

  void Join() override {
    for (std::thread& t : threads_) t.join();
  }

 private:
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<std::vector<AsyncCallSlot*>> slots_of_thread_;
  std::vector<std::thread> threads_;
};

}  // namespace

std::unique_ptr<LoadEngine> NewAsyncEngine(int64_t threads, int64_t concurrency) {
  return std::make_unique<AsyncEngine>(threads, concurrency);
}

}  // namespace countersd::ctl
