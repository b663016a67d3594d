// grpc.health.v1.Health for a handler process.
//
// How it works: one flag, serving_, under a mutex, that goes from true to
// false once (SetNotServing, when the handler starts draining). Check reads
// it. Watch sends the status at once, then waits on a condition variable
// for a change, waking every second to notice a client that went away; it
// sends each change and ends the stream OK after sending NOT_SERVING, which
// is final. An unknown service is NOT_FOUND for Check and a single
// SERVICE_UNKNOWN for Watch (which then waits like any other watch).
#include "server/health_service.h"

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "counters/v1/counters.grpc.pb.h"

namespace countersd {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

bool IsKnownService(const std::string& service) {
  return service.empty() || service == counters::v1::CounterService::service_full_name();
}

}  // namespace

void HealthServiceImpl::SetNotServing() {
  std::lock_guard<std::mutex> lock(mu_);
  serving_ = false;
  changed_.notify_all();
}

grpc::Status HealthServiceImpl::Check(grpc::ServerContext*, const HealthCheckRequest* req,
                                      HealthCheckResponse* resp) {
  if (!IsKnownService(req->service())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown service '", req->service(), "'"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  resp->set_status(serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  return grpc::Status::OK;
}

grpc::Status HealthServiceImpl::Watch(grpc::ServerContext* ctx, const HealthCheckRequest* req,
                                      grpc::ServerWriter<HealthCheckResponse>* writer) {
  const bool known = IsKnownService(req->service());
  HealthCheckResponse resp;
  std::unique_lock<std::mutex> lock(mu_);
  bool sent = false;
  while (true) {
    HealthCheckResponse::ServingStatus now = !known     ? HealthCheckResponse::SERVICE_UNKNOWN
                                             : serving_ ? HealthCheckResponse::SERVING
                                                        : HealthCheckResponse::NOT_SERVING;
    if (!sent || now != resp.status()) {
      resp.set_status(now);
      lock.unlock();
      if (!writer->Write(resp)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
      lock.lock();
      sent = true;
      if (now == HealthCheckResponse::NOT_SERVING) return grpc::Status::OK;  // final
    }
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
    changed_.wait_for(lock, std::chrono::seconds(1));
  }
}

}  // namespace countersd
