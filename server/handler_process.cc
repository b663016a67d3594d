// A handler process: one grpc::Server on the shared port.
//
// Threading (nginx's worker event loop is the model). Every CounterService
// RPC but Snapshot uses gRPC's completion-queue (async) API: one thread per
// handler process polls the process's one ServerCompletionQueue and runs
// each call inline (UnaryCallLoop, unary_call_loop.h), so a call is read,
// handled and answered on one thread with no hand-off between threads.
// gRPC's callback API costs ~5 context switches and futex calls per call
// here: its callback queue has two threads of its own that take turns
// polling. So no service of this server uses the callback API, not even
// health: gRPC's default health service is a callback service, and one
// callback method anywhere brings those threads back (health_service.h is
// our own, async on the same queue: a Watch stream holds no thread).
// Snapshot, which blocks until the aggregator has written a snapshot, and
// reflection, which is rare, use the sync API; their threads never poll (gRPC makes a server's sync queues non-polling
// when it also has a polled async queue), so they do not compete with the
// serving thread.
//
// How it works, step by step:
//  1. Route gRPC's log lines through our logger; register this process's
//     stats slot in the table.
//  2. Build the server: the CounterService (counter_service.h), our health
//     service and reflection on options.address (SO_REUSEPORT: every
//     handler binds the same port), and one completion queue. A failed
//     BuildAndStart (the port taken by a process without SO_REUSEPORT) is
//     exit code 1.
//  3. Start the serving thread (UnaryCallLoop::Run), mark the stats slot
//     ready (the supervisor's "ready" line waits for every handler), and
//     sigwait() on the main thread for SIGTERM/SIGINT.
//  4. Drain: not ready, health NOT_SERVING, new calls fail UNAVAILABLE,
//     waiting Snapshot calls give up by --drain-timeout. Once those are
//     gone, Shutdown the server with a short grace (kShutdownGrace) for
//     replies still being written and idle connections, stop the serving
//     loop, join it and return 0.
#include "server/handler_process.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpc/support/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "server/counter_service.h"
#include "server/health_service.h"
#include "server/unary_call_loop.h"
#include "shared/log.h"

namespace countersd {
namespace {

// How long a draining handler keeps connections open once its own calls
// are done (responses still being written, calls not yet dispatched).
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(250);

// gRPC's own log lines go through our logger, so that every line of the
// daemon has the same format (one JSON object per line with --log-format=json).
void RouteGrpcLog(gpr_log_func_args* args) {
  LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
                   : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                             : LogLevel::kDebug;
  Log(level, absl::StrCat("grpc: ", args->message),
      {{"source", absl::StrCat(args->file, ":", args->line)}});
}

}  // namespace

int RunHandlerProcess(CounterTable* table, const HandlerOptions& options) {
  gpr_set_log_function(RouteGrpcLog);
  // Debian's Abseil checks every absl::Mutex for lock-order cycles; gRPC
  // takes several per call, and the check costs ~3% of a handler's CPU.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (absl::Status s = table->RegisterProcess(getpid(), ProcessRole::kHandler); !s.ok()) {
    Log(LogLevel::kError, "handler cannot register its stats slot", {{"error", s.ToString()}});
    return 1;
  }
  // Not gRPC's default health service: it is a callback service (see the
  // top of this file).
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  CounterServiceImpl service(table, options.max_batch);
  HealthServiceImpl health;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError,
        "handler cannot listen: grpc::ServerBuilder::BuildAndStart failed (address in use by "
        "another process without SO_REUSEPORT, or not available on this host)",
        {{"listen", options.address}});
    cq->Shutdown();
    void* tag;
    bool ok;
    while (cq->Next(&tag, &ok)) {
    }
    return 1;
  }
  UnaryCallLoop loop(&service, &health, cq.get());
  std::thread serving([&loop] { loop.Run(); });
  table->SetReady(true);
  Log(LogLevel::kDebug, "handler serving", {{"listen", options.address}});

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }

  absl::Time drain_deadline = absl::Now() + options.drain_timeout;
  table->SetReady(false);
  health.SetNotServing();
  service.StartDraining(drain_deadline);
  Log(LogLevel::kDebug, "handler draining", {{"signal", sig}});
  // Calls in flight: every RPC but Snapshot finishes inline on the serving
  // thread, and from now on they fail fast with UNAVAILABLE; Snapshot calls
  // give up by the drain deadline. gRPC's Shutdown(deadline) would also wait
  // for every idle client connection to go away, which long-lived clients
  // never do by themselves; so once our calls are done, give the rest a
  // short grace and then close what is left.
  service.WaitForSnapshotWaiters();
  // The serving thread keeps polling through Shutdown (it completes the
  // async calls still in flight); then it shuts the queue down and drains it.
  server->Shutdown(absl::ToChronoTime(std::min(drain_deadline, absl::Now() + kShutdownGrace)));
  loop.Stop();
  serving.join();
  server.reset();
  cq.reset();
  Log(LogLevel::kDebug, "handler stopped");
  return 0;
}

}  // namespace countersd
