#include "client/cancellation.h"

#include <algorithm>

namespace countersd {

void Cancellation::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  // TryCancel under the lock: a context is detached (and then destroyed)
  // only under it too.
  for (grpc::ClientContext* c : attached_) c->TryCancel();
  cancelled_cv_.notify_all();
}

bool Cancellation::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool Cancellation::Attach(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return false;
  attached_.push_back(context);
  return true;
}

void Cancellation::Detach(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  attached_.erase(std::remove(attached_.begin(), attached_.end(), context), attached_.end());
}

bool Cancellation::SleepFor(absl::Duration wait) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cancelled_cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                                 [this] { return cancelled_; });
}

}  // namespace countersd
