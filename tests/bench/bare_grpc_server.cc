// bare_grpc_server: the floor that countersd's gRPC path is measured against.
// One process, gRPC with default settings, the same counters.v1.CounterService
// proto as countersd, and next to nothing behind it: Increment and
// IncrementBatch add to an in-process hash map under one mutex (no shared
// table, no stripes, no stats, no snapshots, no pre-fork). Every other RPC is
// UNIMPLEMENTED. --api picks gRPC's callback API (the default, as countersd),
// its sync API, or its completion-queue (async) API with one queue per
// polling thread, to measure what each costs per call. tests/bench/run.sh drives it with the
// same `counterctl bench` as countersd, as a reference row: the gap between
// the two is what countersd itself costs per call.
//
//   bare_grpc_server --listen=127.0.0.1:0 [--api=callback|sync|async]
//                    [--threads=N] [--processes=N] [--deadlock-detection=off]
// prints "listening on 127.0.0.1:PORT" on stdout once serving, and runs until
// SIGTERM or SIGINT. Debian's Abseil is built without NDEBUG, so absl::Mutex
// (which gRPC 1.51 uses for all its locks) runs its deadlock detector on every
// lock unless it is switched off; --deadlock-detection=off does that, to
// measure what it costs.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "counters/v1/counters.grpc.pb.h"
#include "tests/tool_flags.h"

namespace {

namespace v1 = ::counters::v1;

// What every variant does per call: add to an in-process hash map.
class CounterMap {
 public:
  int64_t Add(const std::string& key, int64_t delta) {
    absl::MutexLock lock(&mu_);
    return values_[key] += delta;
  }
  void AddBatch(const v1::IncrementBatchRequest& req, v1::IncrementBatchResponse* resp) {
    resp->mutable_values()->Reserve(req.increments_size());
    absl::MutexLock lock(&mu_);
    for (const v1::IncrementRequest& inc : req.increments()) {
      resp->add_values(values_[inc.key()] += inc.has_delta() ? inc.delta() : 1);
    }
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> values_ ABSL_GUARDED_BY(mu_);
};

// --api=callback (default; what countersd's handlers use).
class CallbackImpl final : public v1::CounterService::CallbackService {
 public:
  explicit CallbackImpl(CounterMap* map) : map_(map) {}
  grpc::ServerUnaryReactor* Increment(grpc::CallbackServerContext* ctx,
                                      const v1::IncrementRequest* req,
                                      v1::IncrementResponse* resp) override {
    resp->set_value(map_->Add(req->key(), req->has_delta() ? req->delta() : 1));
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* IncrementBatch(grpc::CallbackServerContext* ctx,
                                           const v1::IncrementBatchRequest* req,
                                           v1::IncrementBatchResponse* resp) override {
    map_->AddBatch(*req, resp);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  CounterMap* const map_;
};

// --api=sync: gRPC's synchronous API (its own thread pool polls and runs the
// handlers).
class SyncImpl final : public v1::CounterService::Service {
 public:
  explicit SyncImpl(CounterMap* map) : map_(map) {}
  grpc::Status Increment(grpc::ServerContext*, const v1::IncrementRequest* req,
                         v1::IncrementResponse* resp) override {
    resp->set_value(map_->Add(req->key(), req->has_delta() ? req->delta() : 1));
    return grpc::Status::OK;
  }
  grpc::Status IncrementBatch(grpc::ServerContext*, const v1::IncrementBatchRequest* req,
                              v1::IncrementBatchResponse* resp) override {
    map_->AddBatch(*req, resp);
    return grpc::Status::OK;
  }

 private:
  CounterMap* const map_;
};

// --api=async: the completion-queue API as gRPC's own benchmark server
// (qps_worker) uses it: --threads threads, each with its own completion
// queue, which it polls itself and on which it runs the handlers inline, so
// a call needs no hand-off between threads.
class AsyncCall {
 public:
  virtual ~AsyncCall() = default;
  // Called with the completion of this call's pending operation.
  virtual void Proceed(bool ok) = 0;
};

template <typename Request, typename Response>
class AsyncUnary final : public AsyncCall {
 public:
  using RequestFn = void (v1::CounterService::AsyncService::*)(
      grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  using HandleFn = void (*)(CounterMap*, const Request&, Response*);

  AsyncUnary(v1::CounterService::AsyncService* service, grpc::ServerCompletionQueue* cq,
             CounterMap* map, RequestFn request, HandleFn handle)
      : service_(service), cq_(cq), map_(map), request_(request), handle_(handle) {
    Listen();
  }

  void Proceed(bool ok) override {
    if (!ok) return;  // shutting down; the object is freed with the queue
    if (!replying_) {
      handle_(map_, req_, &resp_);
      replying_ = true;
      writer_->Finish(resp_, grpc::Status::OK, this);
      return;
    }
    Listen();  // the reply went out: wait for the next call
  }

 private:
  void Listen() {
    replying_ = false;
    writer_.reset();
    ctx_.emplace();
    writer_.emplace(&*ctx_);
    req_.Clear();
    resp_.Clear();
    (service_->*request_)(&*ctx_, &req_, &*writer_, cq_, cq_, this);
  }

  v1::CounterService::AsyncService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  CounterMap* const map_;
  const RequestFn request_;
  const HandleFn handle_;
  std::optional<grpc::ServerContext> ctx_;
  Request req_;
  Response resp_;
  std::optional<grpc::ServerAsyncResponseWriter<Response>> writer_;
  bool replying_ = false;
};

void HandleIncrement(CounterMap* map, const v1::IncrementRequest& req,
                     v1::IncrementResponse* resp) {
  resp->set_value(map->Add(req.key(), req.has_delta() ? req.delta() : 1));
}
void HandleBatch(CounterMap* map, const v1::IncrementBatchRequest& req,
                 v1::IncrementBatchResponse* resp) {
  map->AddBatch(req, resp);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  std::string api = "callback";
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int processes = 1;
  std::string deadlock_detection = "on";
  countersd::testing::ToolFlags flags(
      "bare_grpc_server",
      "The counters.v1 gRPC service with only an in-process hash map behind it; prints\n"
      "\"listening on HOST:PORT\" when it serves, stops on SIGTERM or SIGINT.");
  flags.Add("listen", &listen, "HOST:PORT", "address to serve on (port 0: a free one)");
  flags.Add("api", &api, "callback|sync|async", "gRPC server API");
  flags.Add("threads", &threads, "N", "completion-queue threads for --api=async");
  flags.Add("processes", &processes, "N", "pre-forked processes on the same port (1..64)");
  flags.Add("deadlock-detection", &deadlock_detection, "on|off",
            "Abseil's mutex deadlock detection");
  flags.Parse(argc, argv);
  if (api != "callback" && api != "sync" && api != "async") {
    flags.Fail("--api must be callback, sync or async");
  }
  if (threads < 1) flags.Fail("--threads must be >= 1");
  if (processes < 1 || processes > 64) flags.Fail("--processes must be 1..64");
  if (deadlock_detection == "off") {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  } else if (deadlock_detection != "on") {
    flags.Fail("--deadlock-detection must be on or off");
  }
  // --processes=N: pre-fork like countersd, before any gRPC object exists;
  // every process serves the same port (gRPC sets SO_REUSEPORT). Port 0 is
  // resolved first so that they all bind the same one.
  const std::string host = listen.substr(0, listen.rfind(':'));
  if (processes > 1 && listen.substr(listen.rfind(':') + 1) == "0") {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::perror("bare_grpc_server: picking a port");
      return 1;
    }
    close(fd);
    listen = host + ":" + std::to_string(ntohs(a.sin_port));
  }
  std::vector<pid_t> children;
  for (int i = 1; i < processes; ++i) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("bare_grpc_server: fork");
      return 1;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      children.clear();
      break;
    }
    children.push_back(pid);
  }
  const bool parent = processes == 1 || !children.empty();
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before gRPC starts its threads

  CounterMap map;
  CallbackImpl callback_service(&map);
  SyncImpl sync_service(&map);
  v1::CounterService::AsyncService async_service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (api == "callback") {
    builder.RegisterService(&callback_service);
  } else if (api == "sync") {
    builder.RegisterService(&sync_service);
  } else {
    builder.RegisterService(&async_service);
    for (int i = 0; i < threads; ++i) cqs.push_back(builder.AddCompletionQueue());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "bare_grpc_server: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::vector<std::unique_ptr<AsyncCall>> calls;
  std::vector<std::thread> pollers;
  for (auto& cq : cqs) {
    // Enough pending requests per queue for every call a client keeps in flight.
    for (int k = 0; k < 256; ++k) {
      calls.push_back(std::make_unique<AsyncUnary<v1::IncrementRequest, v1::IncrementResponse>>(
          &async_service, cq.get(), &map, &v1::CounterService::AsyncService::RequestIncrement,
          HandleIncrement));
      calls.push_back(
          std::make_unique<AsyncUnary<v1::IncrementBatchRequest, v1::IncrementBatchResponse>>(
              &async_service, cq.get(), &map,
              &v1::CounterService::AsyncService::RequestIncrementBatch, HandleBatch));
    }
    pollers.emplace_back([q = cq.get()] {
      void* tag;
      bool ok;
      while (q->Next(&tag, &ok)) static_cast<AsyncCall*>(tag)->Proceed(ok);
    });
  }
  if (parent) {
    std::printf("listening on %s:%d\n", host.c_str(), port);
    std::fflush(stdout);
  }
  int sig = 0;
  sigwait(&stop, &sig);
  for (pid_t c : children) kill(c, SIGTERM);
  for (pid_t c : children) waitpid(c, nullptr, 0);
  server->Shutdown();
  for (auto& cq : cqs) cq->Shutdown();
  for (auto& t : pollers) t.join();
  return 0;
}
