// grpc.health.v1.Health for a handler process, on the serving thread's
// completion queue.
//
// How it works:
//  - One flag, serving_, goes from true to false once (SetNotServing, when
//    the handler starts draining). Check reads it; Check is an ordinary
//    async unary method of the serving loop (unary_call_loop.cc), answered
//    inline by DoCheck.
//  - Watch: one Watcher is always posted on the queue (RequestWatch), with
//    ServerContext::AsyncNotifyWhenDone asked before it is posted. On the
//    serving thread, step by step:
//      1. A posted Watcher arrives: post the next one. Beyond max_watchers_
//         open watches, Finish it with RESOURCE_EXHAUSTED. Else it joins the
//         open set and writes the current status (SERVING, NOT_SERVING, or
//         SERVICE_UNKNOWN for an unknown service).
//      2. A write completes: if the handler has gone NOT_SERVING, write
//         NOT_SERVING (known service) if not yet written, else Finish OK;
//         otherwise wait, idle, holding nothing but its call state.
//      3. SetNotServing (any thread) sets serving_ and an Alarm on the queue;
//         when the alarm fires on the serving thread, every idle open watch
//         does step 2. A watch that is writing does it when its write
//         completes.
//      4. The done tag (the client went away, the call was cancelled by the
//         server's Shutdown, or it finished): the watch leaves the open set,
//         and the Watcher is freed once its own operation (write or finish),
//         if any, has come back too. A Watcher posted but never matched
//         comes back not ok at shutdown and has no done tag: freed then.
//    So a watch holds no thread, and the serving thread spends a few
//    microseconds on it per status change.
//  - countersd.durability: its status is computed at each Check from the
//    mapping (ReadDurabilityLag), and can go both ways. While at least one
//    Watch of it is open, an Alarm on the queue fires every
//    kDurabilityPollInterval and every idle such watch does step 2, which
//    writes the status whenever it differs from the last one written.
#include "server/health_service.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "counters/v1/counters.grpc.pb.h"
#include "grpc/support/time.h"
#include "proto/status_conversion.h"
#include "server/unary_call_loop.h"
#include "shared/durability_lag.h"
#include "shared/monotonic_time.h"

namespace countersd {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

}  // namespace

HealthServiceImpl::Service HealthServiceImpl::ServiceOf(const std::string& name) const {
  if (name.empty() || name == counters::v1::CounterService::service_full_name()) {
    return Service::kMain;
  }
  if (name == kDurabilityService && durability_table_ != nullptr) return Service::kDurability;
  return Service::kUnknown;
}

HealthCheckResponse::ServingStatus HealthServiceImpl::StatusOf(Service service) const {
  if (service == Service::kUnknown) return HealthCheckResponse::SERVICE_UNKNOWN;
  if (!serving_.load(std::memory_order_acquire)) return HealthCheckResponse::NOT_SERVING;
  if (service == Service::kDurability &&
      ReadDurabilityLag(*durability_table_, lag_limit_).lagging) {
    return HealthCheckResponse::NOT_SERVING;
  }
  return HealthCheckResponse::SERVING;
}

class HealthServiceImpl::DurabilityTick final : public AsyncTag {
 public:
  explicit DurabilityTick(HealthServiceImpl* h) : h_(h) {}
  void Proceed(bool ok) override { h_->OnDurabilityTick(ok); }

 private:
  HealthServiceImpl* const h_;
};

class HealthServiceImpl::NotServingTag final : public AsyncTag {
 public:
  explicit NotServingTag(HealthServiceImpl* h) : h_(h) {}
  void Proceed(bool) override { h_->NotifyWatchers(); }

 private:
  HealthServiceImpl* const h_;
};

class HealthServiceImpl::Watcher final : public AsyncTag {
 public:
  explicit Watcher(HealthServiceImpl* h) : h_(h), writer_(&ctx_), done_tag_(this) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    op_pending_ = true;
    h_->RequestWatch(&ctx_, &req_, &writer_, h_->cq_, h_->cq_, this);
  }
  ~Watcher() override { Leave(); }

  void Proceed(bool ok) override {
    op_pending_ = false;
    switch (state_) {
      case State::kPosted:  // 1.
        if (!ok) {
          delete this;  // never matched: the server is shutting down
          return;
        }
        h_->PostWatch();
        if (h_->watchers_.size() >= h_->max_watchers_) {
          Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              absl::StrCat("this server process has ", h_->max_watchers_,
                                           " Health.Watch streams open, its limit; retry later "
                                           "or use Health.Check")));
          return;
        }
        h_->watchers_.insert(this);
        h_->open_watchers_.fetch_add(1, std::memory_order_relaxed);
        joined_ = true;
        service_ = h_->ServiceOf(req_.service());
        if (service_ == Service::kDurability) h_->DurabilityWatchJoined();
        Advance();
        return;
      case State::kWriting:  // 2.
        if (!ok) {
          state_ = State::kEnded;  // the client went away; the done tag follows
          MaybeDelete();
          return;
        }
        Advance();
        return;
      case State::kFinishing:
      case State::kIdle:
      case State::kEnded:
        state_ = State::kEnded;
        MaybeDelete();
        return;
    }
  }

  // 3. The handler went NOT_SERVING, or the durability poll fired.
  void Notify() {
    if (state_ == State::kIdle) Advance();
  }

 private:
  enum class State { kPosted, kWriting, kIdle, kFinishing, kEnded };

  class DoneTag final : public AsyncTag {
   public:
    explicit DoneTag(Watcher* w) : w_(w) {}
    void Proceed(bool) override { w_->Done(); }

   private:
    Watcher* const w_;
  };

  // 2. The next step of an open watch with no operation pending.
  void Advance() {
    if (done_) {
      state_ = State::kEnded;
      MaybeDelete();
      return;
    }
    const bool serving = h_->serving_.load(std::memory_order_acquire);
    const HealthCheckResponse::ServingStatus now = h_->StatusOf(service_);
    if (!sent_any_ || now != sent_) {
      Write(now);
    } else if (!serving) {
      Finish(grpc::Status::OK);  // NOT_SERVING is final: the stream ends OK
    } else {
      state_ = State::kIdle;
    }
  }

  void Write(HealthCheckResponse::ServingStatus status) {
    resp_.set_status(status);
    sent_ = status;
    sent_any_ = true;
    state_ = State::kWriting;
    op_pending_ = true;
    writer_.Write(resp_, this);
  }

  void Finish(const grpc::Status& status) {
    state_ = State::kFinishing;
    op_pending_ = true;
    writer_.Finish(status, this);
  }

  // 4.
  void Done() {
    done_ = true;
    Leave();
    MaybeDelete();
  }

  void MaybeDelete() {
    if (done_ && !op_pending_) delete this;
  }

  void Leave() {
    if (!joined_) return;
    joined_ = false;
    if (service_ == Service::kDurability) h_->DurabilityWatchLeft();
    h_->watchers_.erase(this);
    {
      std::lock_guard<std::mutex> lock(h_->mu_);
      h_->open_watchers_.fetch_sub(1, std::memory_order_relaxed);
    }
    h_->watches_ended_.notify_all();
  }

  HealthServiceImpl* const h_;
  grpc::ServerContext ctx_;
  HealthCheckRequest req_;
  HealthCheckResponse resp_;
  grpc::ServerAsyncWriter<HealthCheckResponse> writer_;
  DoneTag done_tag_;
  State state_ = State::kPosted;
  bool op_pending_ = false;  // a Request, Write or Finish of this watch is on the queue
  bool done_ = false;        // the done tag came back
  bool joined_ = false;      // in the open set
  Service service_ = Service::kMain;
  bool sent_any_ = false;
  HealthCheckResponse::ServingStatus sent_ = HealthCheckResponse::UNKNOWN;
};

HealthServiceImpl::HealthServiceImpl(size_t max_watchers)
    : max_watchers_(max_watchers),
      not_serving_tag_(std::make_unique<NotServingTag>(this)),
      tick_tag_(std::make_unique<DurabilityTick>(this)) {}

void HealthServiceImpl::ReportDurability(CounterTable* table, absl::Duration lag_limit) {
  durability_table_ = table;
  lag_limit_ = lag_limit;
}

void HealthServiceImpl::DurabilityWatchJoined() {
  ++durability_watchers_;
  ArmDurabilityTick();
}

void HealthServiceImpl::ArmDurabilityTick() {
  if (tick_armed_ || stopped_ || cq_ == nullptr) return;
  tick_armed_ = true;
  tick_alarm_.Set(
      cq_,
      gpr_time_add(
          gpr_now(GPR_CLOCK_MONOTONIC),
          gpr_time_from_millis(absl::ToInt64Milliseconds(kDurabilityPollInterval), GPR_TIMESPAN)),
      tick_tag_.get());
}

void HealthServiceImpl::OnDurabilityTick(bool ok) {
  tick_armed_ = false;
  if (!ok || stopped_) return;  // cancelled: the queue is shutting down
  std::vector<Watcher*> open(watchers_.begin(), watchers_.end());
  for (Watcher* w : open) w->Notify();  // each writes only a changed status
  if (durability_watchers_ > 0) ArmDurabilityTick();
}

HealthServiceImpl::~HealthServiceImpl() = default;

bool HealthServiceImpl::WaitForWatchesToEnd(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  // wait_for: the steady clock (the deadline is MonotonicNow-based).
  return watches_ended_.wait_for(lock, absl::ToChronoNanoseconds(deadline - MonotonicNow()), [this] {
    return open_watchers_.load(std::memory_order_relaxed) == 0;
  });
}

void HealthServiceImpl::SetNotServing() {
  serving_.store(false, std::memory_order_release);
  std::lock_guard<std::mutex> lock(mu_);
  if (cq_ == nullptr || alarm_set_) return;  // no watch can be open yet, or already told
  alarm_set_ = true;
  not_serving_alarm_.Set(cq_, gpr_now(GPR_CLOCK_MONOTONIC), not_serving_tag_.get());
}

absl::Status HealthServiceImpl::DoCheck(const HealthCheckRequest& req,
                                        HealthCheckResponse* resp) const {
  const Service service = ServiceOf(req.service());
  if (service == Service::kUnknown) {
    return absl::NotFoundError(absl::StrCat("unknown service '", req.service(), "'"));
  }
  resp->set_status(StatusOf(service));
  return absl::OkStatus();
}

void HealthServiceImpl::StartServing(grpc::ServerCompletionQueue* cq) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cq_ = cq;
  }
  PostWatch();
}

void HealthServiceImpl::StopServing() {
  stopped_ = true;
  if (tick_armed_) tick_alarm_.Cancel();  // its tag comes back not ok
}

void HealthServiceImpl::PostWatch() {
  if (!stopped_) new Watcher(this);  // frees itself (Watcher::MaybeDelete)
}

void HealthServiceImpl::NotifyWatchers() {
  std::vector<Watcher*> open(watchers_.begin(), watchers_.end());
  for (Watcher* w : open) w->Notify();
}

}  // namespace countersd
