// The callback engine of `counterctl bench` (--api=callback): gRPC's
// callback API, with no client thread of our own.
//
// How it works:
//  1. Each slot is also a grpc::ClientUnaryReactor. It starts a call with
//     stub->async()->Method(context, request, response, this) and
//     StartCall().
//  2. gRPC runs OnDone on one of its own threads when the call ends; OnDone
//     records the call (Complete) and issues the slot's next call (Issue),
//     still on that thread. A slot's calls never overlap, so OnDone of one
//     slot never runs twice at once.
//  3. Start() issues every slot's first call from the thread that runs the
//     Bench; after that only gRPC's threads issue. A slot's last Issue,
//     which tells the Bench it is finished, is its last touch of itself.
//     Join() has no thread to wait for.
#include <grpcpp/support/client_callback.h>

#include "client/counterctl/bench_load.h"

namespace countersd::ctl {
namespace {

namespace v1 = ::counters::v1;

class CallbackCallSlot final : public CallSlot, public grpc::ClientUnaryReactor {
 public:
  using CallSlot::CallSlot;

  void OnDone(const grpc::Status& status) override {
    Complete(status);
    Issue();
  }

 private:
  void StartRpc(RpcKind rpc) override {
    switch (rpc) {
      case RpcKind::kIncrement:
        stub_->async()->Increment(&*context_, &increment_request_, &increment_response_, this);
        break;
      case RpcKind::kBatch:
        stub_->async()->IncrementBatch(&*context_, &batch_request_, &batch_response_, this);
        break;
      case RpcKind::kGet:
        stub_->async()->Get(&*context_, &get_request_, &get_response_, this);
        break;
      case RpcKind::kStream:  // not CallSlot loads (bench_stream.h)
      case RpcKind::kAccumulate:
        break;
    }
    StartCall();
  }
};

class CallbackEngine final : public LoadEngine {
 public:
  std::unique_ptr<CallSlot> NewSlot(Bench* bench, int64_t /*index*/, v1::CounterService::Stub* stub,
                                    uint64_t seed) override {
    return std::make_unique<CallbackCallSlot>(bench, stub, seed);
  }

  void Start(const std::vector<std::unique_ptr<CallSlot>>& slots) override {
    for (const auto& slot : slots) slot->Issue();
  }

  void Join() override {}
};

}  // namespace

std::unique_ptr<LoadEngine> NewCallbackEngine() { return std::make_unique<CallbackEngine>(); }

}  // namespace countersd::ctl
