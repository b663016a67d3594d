// FakeStreamServer; what it does is at the top of fake_stream_server.h.
#include "tests/client/fake_stream_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/grpc_deadline.h"

namespace countersd::testing {

namespace v1 = ::counters::v1;

class FakeStreamServer::Service final : public v1::CounterService::Service {
 public:
  grpc::Status IncrementStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::IncrementStreamResponse, v1::IncrementStreamRequest>* stream)
      override {
    {
      std::lock_guard lock(mu);
      ++streams;
      auto it = context->client_metadata().find("authorization");
      authorization = it == context->client_metadata().end()
                          ? std::string()
                          : std::string(it->second.data(), it->second.size());
    }
    v1::IncrementStreamRequest request;
    while (stream->Read(&request)) {
      v1::IncrementStreamResponse response;
      response.set_sequence(request.sequence());
      {
        std::lock_guard lock(mu);
        ++(request.options().durable() ? durable_messages : plain_messages);
        // A session's message seen before: its first answer again, nothing
        // applied (the daemon's exactly-once contract, counters.proto).
        if (!request.options().session_id().empty()) {
          auto it = answered.find({request.options().session_id(), request.options().sequence()});
          if (it != answered.end()) {
            ++duplicates;
            response = it->second;
            response.set_sequence(request.sequence());
          }
        }
      }
      if (response.code() != 0 || response.values_size() > 0) {
        if (!stream->Write(response)) break;
        continue;
      }
      bool crash = false, drop = false, refuse = false, hold = false;
      int refused_at = 0;
      for (int i = 0; i < request.increments_size(); ++i) {
        const std::string& key = request.increments(i).key();
        crash |= absl::StartsWith(key, "crash/");
        drop |= absl::StartsWith(key, "drop/");
        hold |= absl::StartsWith(key, "hold/");
        if (!refuse && absl::StartsWith(key, "refuse/")) {
          refuse = true;
          refused_at = i;
        }
      }
      if (drop) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake: dropped");
      if (refuse) {
        response.set_code(static_cast<int>(grpc::StatusCode::OUT_OF_RANGE));
        response.set_message(  // the daemon's form (shared/batch_refusal.h)
            absl::StrCat("increment ", refused_at, ": would overflow; no increment was applied"));
      } else {
        std::lock_guard lock(mu);
        for (const v1::IncrementRequest& inc : request.increments()) {
          response.add_values(values[inc.key()] += inc.delta());
        }
        if (!request.options().session_id().empty()) {
          answered[{request.options().session_id(), request.options().sequence()}] = response;
        }
      }
      if (crash) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake: crashed");
      if (hold) {
        std::unique_lock lock(mu);
        // A cancel does not notify cv: look at it every 20 ms.
        while (releases == 0 && !shutting_down && !context->IsCancelled()) {
          cv.wait_for(lock, std::chrono::milliseconds(20));
        }
        if (context->IsCancelled()) return grpc::Status::CANCELLED;
        if (releases > 0) --releases;
      }
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int64_t> values;
  int streams = 0;
  uint64_t durable_messages = 0, plain_messages = 0, duplicates = 0;
  std::map<std::pair<std::string, uint64_t>, v1::IncrementStreamResponse> answered;
  std::string authorization;
  uint64_t releases = 0;  // Release() calls not yet used by a held answer
  bool shutting_down = false;
};

FakeStreamServer::FakeStreamServer(int port) : service_(std::make_unique<Service>()) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    std::fprintf(stderr, "FakeStreamServer: could not start a gRPC server on 127.0.0.1:%d\n", port);
    std::abort();
  }
  address_ = absl::StrCat("127.0.0.1:", port_);
}

FakeStreamServer::~FakeStreamServer() {
  {
    std::lock_guard lock(service_->mu);
    service_->shutting_down = true;
    service_->cv.notify_all();
  }
  server_->Shutdown(GrpcDeadlineAfter(absl::Seconds(5)));  // then cancels what is left
}

int64_t FakeStreamServer::Value(const std::string& key) const {
  std::lock_guard lock(service_->mu);
  auto it = service_->values.find(key);
  return it == service_->values.end() ? 0 : it->second;
}

int FakeStreamServer::streams() const {
  std::lock_guard lock(service_->mu);
  return service_->streams;
}

uint64_t FakeStreamServer::durable_messages() const {
  std::lock_guard lock(service_->mu);
  return service_->durable_messages;
}

uint64_t FakeStreamServer::duplicates() const {
  std::lock_guard lock(service_->mu);
  return service_->duplicates;
}

uint64_t FakeStreamServer::plain_messages() const {
  std::lock_guard lock(service_->mu);
  return service_->plain_messages;
}

std::string FakeStreamServer::last_authorization() const {
  std::lock_guard lock(service_->mu);
  return service_->authorization;
}

void FakeStreamServer::Release() {
  std::lock_guard lock(service_->mu);
  ++service_->releases;
  service_->cv.notify_all();
}

}  // namespace countersd::testing
