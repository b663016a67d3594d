// Cancellation: a handle the caller keeps to cancel calls of a
// CounterClient from any thread.
//
//   auto cancel = std::make_shared<countersd::Cancellation>();
//   std::thread t([&] { auto v = client.Get("k", {.cancellation = cancel}); });
//   cancel->Cancel();  // the Get returns CANCELLED, now or at its start
//
// How it works: while a call given the handle runs an attempt, its
// grpc::ClientContext is registered here (Attach/Detach, under a mutex);
// Cancel() sets the flag and calls TryCancel on every registered context, so
// an attempt in flight ends with CANCELLED. An attempt that starts after
// Cancel() is not sent. A back-off between retries waits on the handle's
// condition variable (the steady clock), so Cancel() also cuts it short.
// Cancellation is for good: one handle may cover many calls, at once or one
// after the other, and a cancelled handle cancels each of them.
//
// A cancelled Increment may or may not have been applied (the server may
// have applied it before the cancellation reached it), as with UNAVAILABLE
// (client.h).
#ifndef COUNTERSD_CLIENT_CANCELLATION_H_
#define COUNTERSD_CLIENT_CANCELLATION_H_

#include <grpcpp/client_context.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "absl/time/time.h"

namespace countersd {

class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Cancels every call given this handle, in flight or to come.
  void Cancel();
  bool cancelled() const;

 private:
  friend class CounterClient;
  // Registers an attempt's context; false (not registered) if cancelled.
  bool Attach(grpc::ClientContext* context);
  void Detach(grpc::ClientContext* context);
  // Waits `wait`; false if cancelled before or during it.
  bool SleepFor(absl::Duration wait);

  mutable std::mutex mu_;
  std::condition_variable cancelled_cv_;
  bool cancelled_ = false;
  std::vector<grpc::ClientContext*> attached_;
};

}  // namespace countersd

#endif  // COUNTERSD_CLIENT_CANCELLATION_H_
