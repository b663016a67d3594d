// grpc.health.v1.Health as a handler process serves it (Kubernetes gRPC
// probes, grpcurl, CounterClient::Health). Not gRPC's default health
// service: that one is a callback service, and one callback method anywhere
// in the server brings back the callback threads the handler avoids (see
// handler_process.cc).
#ifndef COUNTERSD_SERVER_HEALTH_SERVICE_H_
#define COUNTERSD_SERVER_HEALTH_SERVICE_H_

#include <condition_variable>
#include <mutex>

#include "grpc/health/v1/health.grpc.pb.h"

namespace countersd {

// SERVING for "" and counters.v1.CounterService until SetNotServing();
// NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch) for any other service. A sync
// service: its calls are rare, and a Watch blocks its thread until the
// client goes (noticed within a second) or the status changes to
// NOT_SERVING, when the stream ends OK. Thread-safe.
class HealthServiceImpl final : public grpc::health::v1::Health::Service {
 public:
  // NOT_SERVING from now on (the handler is draining); final.
  void SetNotServing();

  grpc::Status Check(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool serving_ = true;  // guarded by mu_
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_HEALTH_SERVICE_H_
