// IncrementStream's internals shared by its files (increment_stream.cc: the
// public calls and the reactions; increment_stream_resolution.cc: each
// message's result; increment_stream_driver.cc: the driver thread): the
// one gRPC call, a ClientBidiReactor. Not part of the client's API.
#ifndef COUNTERSD_CLIENT_INCREMENT_STREAM_CALL_H_
#define COUNTERSD_CLIENT_INCREMENT_STREAM_CALL_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <chrono>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/increment_stream.h"

namespace countersd {

inline absl::Duration SinceSteady(std::chrono::steady_clock::time_point t) {
  return absl::FromChrono(std::chrono::steady_clock::now() - t);
}

// One IncrementStream call. Every field below `context` is guarded by the
// owner's mu_; the reactions never call gRPC with it held.
class IncrementStream::Call final
    : public grpc::ClientBidiReactor<counters::v1::IncrementStreamRequest,
                                     counters::v1::IncrementStreamResponse> {
 public:
  explicit Call(IncrementStream* owner) : owner_(owner) {
    if (!owner->authorization_.empty()) context.AddMetadata("authorization", owner->authorization_);
  }

  // Binds and starts the call. The hold lasts until the stream can take no
  // more writes (EndWritesLocked).
  void Begin() {
    owner_->stub_->async()->IncrementStream(&context, this);
    AddHold();
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  // Under mu_: ends writes on this call (no new write will start) and says
  // whether the caller must now RemoveHold (outside the lock).
  bool EndWritesLocked() {
    if (owner_->open_) {
      owner_->open_ = false;
      if (!owner_->closing_) owner_->broken_since_ = Clock::now();
    }
    if (hold_released || owner_->writing_) return false;
    hold_released = true;
    return true;
  }

  grpc::ClientContext context;
  // Guarded by the owner's mu_:
  absl::Status error;  // our own reason to end the call, if any
  bool hold_released = false;
  bool answered_any = false;
  bool finished = false;  // OnDone made its last touch of this object
  int users = 0;          // threads using this object outside mu_
  Clock::time_point started = Clock::now();

 private:
  IncrementStream* const owner_;
  counters::v1::IncrementStreamResponse response_;
};

}  // namespace countersd

#endif  // COUNTERSD_CLIENT_INCREMENT_STREAM_CALL_H_
