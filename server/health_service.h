// grpc.health.v1.Health as a handler process serves it (Kubernetes gRPC
// probes, grpcurl, CounterClient::Health). Not gRPC's default health
// service: that one is a callback service, and one callback method anywhere
// in the server brings back the callback threads the handler avoids (see
// handler_process.cc). Check and Watch are async methods served on the
// handler's completion queue by its serving thread (unary_call_loop.h), so a
// Watch stream holds no thread; see health_service.cc for how it works.
#ifndef COUNTERSD_SERVER_HEALTH_SERVICE_H_
#define COUNTERSD_SERVER_HEALTH_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/alarm.h"
#include "shared/counter_table.h"

namespace countersd {

// SERVING for "" and counters.v1.CounterService until SetNotServing();
// NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch) for any other service.
//
// countersd.durability (once ReportDurability is called): whether the
// snapshots keep up, read from the mapping (shared/durability_lag.h), so
// it holds whatever the snapshot writer does: NOT_SERVING while some change
// older than the lag limit is in no durable snapshot (and once draining),
// SERVING otherwise. It can go back to SERVING, so a Watch of it gets every
// change, checked once a second while such a watch is open. The main
// service ("" and CounterService) does not follow it: the README says why.
//
// Watch sends the current status at once, then each change: after
// SetNotServing a watch of a known service gets NOT_SERVING and the stream
// ends OK; a watch of an unknown service (which got SERVICE_UNKNOWN) ends OK
// too. A client that goes away ends its watch at once (the queue tells,
// ServerContext::AsyncNotifyWhenDone). At most `max_watchers` watches are
// open at once per handler process; a Watch beyond that ends at once with
// RESOURCE_EXHAUSTED (each open watch costs a few KB of gRPC call state and
// one HTTP/2 stream; see kMaxWatchers).
//
// Threads: SetNotServing from any thread; StartServing, StopServing and
// every call on the serving thread that polls the queue.
class HealthServiceImpl final
    : public grpc::health::v1::Health::WithAsyncMethod_Check<
          grpc::health::v1::Health::WithAsyncMethod_Watch<grpc::health::v1::Health::Service>> {
 public:
  using AsyncBase = grpc::health::v1::Health::WithAsyncMethod_Check<
      grpc::health::v1::Health::WithAsyncMethod_Watch<grpc::health::v1::Health::Service>>;

  // Default cap on open watches per handler process.
  static constexpr size_t kMaxWatchers = 1024;

  // The service that reports the durability lag.
  static constexpr char kDurabilityService[] = "countersd.durability";
  // How often an open Watch of kDurabilityService is re-evaluated.
  static constexpr absl::Duration kDurabilityPollInterval = absl::Seconds(1);

  explicit HealthServiceImpl(size_t max_watchers = kMaxWatchers);
  ~HealthServiceImpl() override;

  // Serves kDurabilityService from `table`, NOT_SERVING past `lag_limit`
  // (DurabilityLagLimit). REQUIRES: before StartServing; `table` outlives
  // the service.
  void ReportDurability(CounterTable* table, absl::Duration lag_limit);

  // NOT_SERVING from now on (the handler is draining); final. Wakes every
  // open watch on the serving thread (an alarm on the queue).
  // REQUIRES: before the queue is shut down (before UnaryCallLoop::Stop).
  void SetNotServing();

  // Check's request handling: OK with the status, or NOT_FOUND for an
  // unknown service.
  absl::Status DoCheck(const grpc::health::v1::HealthCheckRequest& req,
                       grpc::health::v1::HealthCheckResponse* resp) const;
  // DoCheck as the serving loop calls it.
  struct CheckFn {
    HealthServiceImpl* health;
    absl::Status operator()(const grpc::health::v1::HealthCheckRequest& req,
                            grpc::health::v1::HealthCheckResponse* resp) const {
      return health->DoCheck(req, resp);
    }
  };

  // Posts the first Watch request on `cq` (the queue this service was
  // registered with). Serving thread, once.
  void StartServing(grpc::ServerCompletionQueue* cq);
  // Posts no more Watch requests (the queue is about to shut down).
  void StopServing();

  // Open watches now (any thread; for tests).
  size_t watchers() const { return open_watchers_.load(std::memory_order_relaxed); }
  // After SetNotServing: blocks until every open watch has ended (each sends
  // NOT_SERVING and finishes OK by itself, on the serving thread) or until
  // `deadline`; false at the deadline. The drain waits for it so that
  // Shutdown's short grace does not cut a watch before its final status is
  // written. Any thread but the serving one.
  bool WaitForWatchesToEnd(absl::Time deadline);

 private:
  class Watcher;
  class NotServingTag;
  class DurabilityTick;
  enum class Service { kMain, kDurability, kUnknown };
  Service ServiceOf(const std::string& name) const;
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(Service service) const;
  // A Watch of kDurabilityService opened or ended (serving thread): the
  // poll alarm runs while one is open.
  void DurabilityWatchJoined();
  void DurabilityWatchLeft() { --durability_watchers_; }
  void ArmDurabilityTick();
  void OnDurabilityTick(bool ok);
  void PostWatch();
  // On the serving thread, after SetNotServing's alarm: every open watch
  // sends NOT_SERVING (or ends).
  void NotifyWatchers();

  const size_t max_watchers_;
  std::atomic<bool> serving_{true};
  std::atomic<size_t> open_watchers_{0};  // decremented under mu_, then watches_ended_
  std::condition_variable watches_ended_;
  // The serving thread's state.
  grpc::ServerCompletionQueue* cq_ = nullptr;  // also read by SetNotServing, under mu_
  bool stopped_ = false;
  std::unordered_set<Watcher*> watchers_;  // the open watches
  // SetNotServing's alarm.
  std::mutex mu_;
  bool alarm_set_ = false;  // guarded by mu_
  std::unique_ptr<NotServingTag> not_serving_tag_;
  grpc::Alarm not_serving_alarm_;
  // countersd.durability (set before serving; then read-only).
  CounterTable* durability_table_ = nullptr;
  absl::Duration lag_limit_ = absl::InfiniteDuration();
  // Its Watch poll, on the serving thread.
  size_t durability_watchers_ = 0;
  bool tick_armed_ = false;
  std::unique_ptr<DurabilityTick> tick_tag_;
  grpc::Alarm tick_alarm_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_HEALTH_SERVICE_H_
