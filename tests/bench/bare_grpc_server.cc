// bare_grpc_server: the floor that countersd's gRPC path is measured against.
// One process, gRPC's callback API with default settings, the same
// counters.v1.CounterService proto as countersd, and next to nothing behind
// it: Increment and IncrementBatch add to an in-process hash map under one
// mutex (no shared table, no stripes, no stats, no snapshots, no pre-fork).
// Every other RPC is UNIMPLEMENTED. tests/bench/run.sh drives it with the
// same `counterctl bench` as countersd, as a reference row: the gap between
// the two is what countersd itself costs per call.
//
//   bare_grpc_server --listen=127.0.0.1:0 [--deadlock-detection=off]
// prints "listening on 127.0.0.1:PORT" on stdout once serving, and runs until
// SIGTERM or SIGINT. Debian's Abseil is built without NDEBUG, so absl::Mutex
// (which gRPC 1.51 uses for all its locks) runs its deadlock detector on every
// lock unless it is switched off; --deadlock-detection=off does that, to
// measure what it costs.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "counters/v1/counters.grpc.pb.h"

namespace {

namespace v1 = ::counters::v1;

class BareCounterService final : public v1::CounterService::CallbackService {
 public:
  grpc::ServerUnaryReactor* Increment(grpc::CallbackServerContext* ctx,
                                      const v1::IncrementRequest* req,
                                      v1::IncrementResponse* resp) override {
    {
      absl::MutexLock lock(&mu_);
      int64_t& v = values_[req->key()];
      v += req->has_delta() ? req->delta() : 1;
      resp->set_value(v);
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* IncrementBatch(grpc::CallbackServerContext* ctx,
                                           const v1::IncrementBatchRequest* req,
                                           v1::IncrementBatchResponse* resp) override {
    resp->mutable_values()->Reserve(req->increments_size());
    {
      absl::MutexLock lock(&mu_);
      for (const v1::IncrementRequest& inc : req->increments()) {
        int64_t& v = values_[inc.key()];
        v += inc.has_delta() ? inc.delta() : 1;
        resp->add_values(v);
      }
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--listen=", 9) == 0) {
      listen = argv[i] + 9;
    } else if (std::strcmp(argv[i], "--deadlock-detection=off") == 0) {
      absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    } else {
      std::fprintf(stderr,
                   "Usage: bare_grpc_server [--listen=HOST:PORT] [--deadlock-detection=off]\n");
      return 2;
    }
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before gRPC starts its threads

  BareCounterService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "bare_grpc_server: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  std::printf("listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown();
  return 0;
}
