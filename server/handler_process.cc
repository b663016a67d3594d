// A handler process: one grpc::Server on the shared port.
//
// Threading (nginx's worker event loop is the model). Every CounterService
// RPC but Snapshot uses gRPC's completion-queue (async) API: one thread per
// handler process polls the process's one ServerCompletionQueue and runs
// each call inline (UnaryCallLoop, unary_call_loop.h), so a call is read,
// handled and answered on one thread with no hand-off between threads.
// List alone is handed off once received: a thread of lower CPU priority
// decodes it, runs the page and serializes the reply, then hands it back to
// be Finished (LowPriorityCalls, low_priority_calls.cc), so that clients
// listing a big table cannot take the serving thread's turns.
// gRPC's callback API costs ~5 context switches and futex calls per call
// here: its callback queue has two threads of its own that take turns
// polling. So no service of this server uses the callback API, not even
// health: gRPC's default health service is a callback service, and one
// callback method anywhere brings those threads back (health_service.h is
// our own, async on the same queue: a Watch stream holds no thread).
// Snapshot, which blocks until the aggregator has written a snapshot, and
// reflection, which is rare, use the sync API; their threads never poll
// (gRPC makes a server's sync queues non-polling when it also has a polled
// async queue), so they do not compete with the serving thread.
//
// How it works, step by step:
//  1. Route gRPC's log lines through our logger; arm the test seam if its
//     variable is set (below); register this process's stats slot in the
//     table.
//  2. Build the server: the CounterService (counter_service.h), our health
//     service and reflection, one completion queue, and the limits on what
//     clients may make it hold (ApplyLimits below: memory quota, streams
//     per connection, idle and keepalive enforcement). The server has no
//     listening port of its own for plaintext: raise RLIMIT_NOFILE to what
//     --max-connections needs, then HandlerListeners (handler_listeners.h)
//     binds each plaintext TCP address with a ConnectionGate
//     (connection_gate.h; SO_REUSEPORT: every handler binds the same port)
//     and adopts each unix socket the supervisor made; the gates cap
//     connections, enforce --handshake-timeout and hand each admitted
//     socket to the server (grpc::AddInsecureChannelFromFd). With TLS on,
//     the TCP addresses are gRPC's own TLS ports instead (the trade-off is
//     in handler_listeners.h). A failed bind (the port taken by a process
//     without SO_REUSEPORT) or BuildAndStart is exit code 1.
//  3. Start the List thread (LowPriorityCalls, at nice 19) and the
//     serving thread (UnaryCallLoop::Run, which beats the
//     heartbeat in the stats slot at every turn and at least every
//     options.heartbeat_interval: the supervisor kills a handler whose
//     heartbeat stops, child_liveness.cc) and the gate's thread,
//     mark the stats slot ready (the supervisor's "ready" line waits for
//     every handler), and wait on the main thread for SIGTERM/SIGINT
//     (sigtimedwait), trimming the heap once a second meanwhile, and
//     re-reading --auth-file on SIGHUP (AccessControl::Reload: the serving
//     thread picks the new policy up at its next call).
//  4. Drain: not ready, health NOT_SERVING, new calls fail UNAVAILABLE,
//     waiting Snapshot calls give up by --drain-timeout; the gate stops
//     (no new connections: they queue on the other handlers' listeners or
//     wait in this closed listener's backlog and are reset); health watches
//     send NOT_SERVING and end OK, and increment streams send the answers
//     they have and end UNAVAILABLE (both waited for, up to the drain
//     deadline).
//     Once those are gone, Shutdown the server with a short grace (kShutdownGrace) for
//     replies still being written and idle connections, stop the List
//     thread (every List call is finished by then; its queue still polled),
//     then the serving loop, join it and return 0.
#include "server/handler_process.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/resource_quota.h"
#include "proto/grpc_deadline.h"
#include "server/access_control.h"
#include "server/connection_gate.h"
#include "server/counter_service.h"
#include "server/group_commit.h"
#include "server/handler_listeners.h"
#include "server/health_service.h"
#include "server/increment_stream.h"
#include "server/library_logs.h"
#include "server/low_priority_calls.h"
#include "server/unary_call_loop.h"
#include "shared/log.h"
#include "shared/monotonic_time.h"

namespace countersd {
namespace {

// The test seam that stops a handler inside a critical section (the
// liveness tests in tests/recovery/liveness_test.cc): when the handler
// starts with COUNTERSD_TEST_STOP_IN_CRITICAL_SECTION=<key> in its
// environment, an increment of exactly that key raise(SIGSTOP)s the whole
// process while it holds the key's stripe, with the slot half written
// (CounterTable::SetCriticalSectionHookForTest). Read once at handler start;
// logged at warning level, since it has no use outside a test.
constexpr char kStopInCriticalSectionEnv[] = "COUNTERSD_TEST_STOP_IN_CRITICAL_SECTION";
const std::string* g_stop_in_critical_section = nullptr;

void StopInCriticalSection(std::string_view key) {
  if (key == *g_stop_in_critical_section) raise(SIGSTOP);
}

void ArmTestStopInCriticalSection() {
  const char* key = getenv(kStopInCriticalSectionEnv);
  if (key == nullptr || *key == '\0') return;
  g_stop_in_critical_section = new std::string(key);
  CounterTable::SetCriticalSectionHookForTest(StopInCriticalSection);
  Log(LogLevel::kWarning, "test seam armed: an increment of this key stops the handler",
      {{"env", kStopInCriticalSectionEnv}, {"key", key}});
}

// How long a draining handler keeps connections open once its own calls
// are done (responses still being written, calls not yet dispatched).
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(250);

// How often the main thread gives freed heap back to the kernel (below).
constexpr absl::Duration kTrimInterval = absl::Seconds(1);

int Millis(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
}

// What a client may make this server hold (issue 11), as gRPC arguments.
// GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS is not among them: plaintext
// connections come through AddInsecureChannelFromFd, which has no
// handshake, and the ConnectionGate enforces --handshake-timeout instead;
// HandlerListeners::AddTlsPorts sets it for gRPC's own TLS listener.
// Tried for the unary path and not set (issue 15; docs/benchmarks.md has
// the runs): GRPC_ARG_MINIMAL_STACK saved ~7% of the server's CPU per call
// but drops gRPC's message-size filter, so the 4 MiB receive limit no
// longer holds (a 5.3 MB request was read whole and refused only by
// --max-batch); GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE (0, 1 MiB) and
// GRPC_ARG_HTTP2_BDP_PROBE off measured the same as gRPC's defaults.
void ApplyLimits(const HandlerOptions& options, grpc::ResourceQuota* quota,
                 grpc::ServerBuilder* builder) {
  // Every connection's and call's memory (transport, read buffers, call
  // arenas) is charged to the quota. Under pressure gRPC shrinks read
  // buffers, sends idle connections GOAWAY, cancels streams
  // (ENHANCE_YOUR_CALM) and drops new connections.
  quota->Resize(options.memory_quota);
  builder->SetResourceQuota(*quota);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Millis(options.idle_timeout));
  // Keepalive enforcement: pings without data closer together than
  // --min-ping-interval are strikes, kMaxPingStrikes of them a GOAWAY. With
  // PERMIT_WITHOUT_CALLS the same interval holds on a connection with no
  // call (gRPC's default would be two hours there).
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              Millis(options.min_ping_interval));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, kMaxPingStrikes);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

// Raises the soft RLIMIT_NOFILE to what `max_connections` needs (config.cc
// checked the hard limit at start). False with a logged error if it cannot.
bool RaiseFdLimit(int max_connections) {
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0) return true;
  rlim_t need = static_cast<rlim_t>(max_connections) + kReservedFds;
  if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < need) {
    nofile.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
      Log(LogLevel::kError, "handler cannot raise RLIMIT_NOFILE for --max-connections",
          {{"need", static_cast<uint64_t>(need)},
           {"hard_limit", static_cast<uint64_t>(nofile.rlim_max)}});
      return false;
    }
  }
  return true;
}

}  // namespace

int RunHandlerProcess(CounterTable* table, const HandlerOptions& options) {
  RouteLibraryLogs();  // library_logs.h
  // Debian's Abseil checks every absl::Mutex for lock-order cycles; gRPC
  // takes several per call, and the check costs ~3% of a handler's CPU.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ArmTestStopInCriticalSection();
  if (absl::Status s = table->RegisterProcess(getpid(), ProcessRole::kHandler); !s.ok()) {
    Log(LogLevel::kError, "handler cannot register its stats slot", {{"error", s.ToString()}});
    return 1;
  }
  // Not gRPC's default health service: it is a callback service (see the
  // top of this file).
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  AccessControl access(options.auth_file, options.auth_policy);
  CounterServiceImpl service(table, options.max_batch, &access, options.stats, options.stats_index);
  HealthServiceImpl health;
  health.ReportDurability(table, options.durability_lag_limit);
  if (!RaiseFdLimit(HandlerListeners::MaxGatedConnections(options))) return 1;
  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("countersd-handler");
  ApplyLimits(options, &quota, &builder);
  HandlerListeners::AddTlsPorts(options, &builder);
  builder.RegisterService(&service);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  HandlerListeners listeners;
  absl::Status listening = server == nullptr
                               ? absl::InternalError("BuildAndStart failed (a TLS port in use?)")
                               : listeners.Start(options, server.get(), table);
  if (!listening.ok()) {
    Log(LogLevel::kError,
        "handler cannot listen (address in use by another process without SO_REUSEPORT, or "
        "not available on this host)",
        {{"listen", options.listen.Describe()}, {"error", listening.ToString()}});
    if (server != nullptr) server->Shutdown();
    cq->Shutdown();
    void* tag;
    bool ok;
    while (cq->Next(&tag, &ok)) {
    }
    return 1;
  }
  LowPriorityCalls list_calls;
  // The handler's log of durable writes: without it they are refused.
  std::unique_ptr<GroupCommit> group_commit;
  if (!options.data_dir.empty()) {
    absl::StatusOr<std::unique_ptr<GroupCommit>> gc =
        GroupCommit::Start(table, options.data_dir, options.stats_index,
                           options.stats != nullptr ? &options.stats->row(options.stats_index)
                                                    : nullptr);
    if (gc.ok()) {
      group_commit = *std::move(gc);
      service.EnableDurableWrites();
    } else {
      Log(LogLevel::kError, "the log of durable writes cannot start; durable writes are refused",
          {{"error", gc.status().ToString()}});
    }
  }
  IncrementStreams streams(&service, group_commit.get());
  UnaryCallLoop loop(&service, &health, &streams, cq.get(),
                     {.table = table, .interval = options.heartbeat_interval}, &list_calls,
                     group_commit.get());
  std::thread serving([&loop] { loop.Run(); });
  table->SetReady(true);
  Log(LogLevel::kDebug, "handler serving", {{"listen", options.listen.Describe()}});

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // While it waits for a stop signal, the main thread hands freed heap back
  // to the kernel once a second (malloc_trim). A burst of calls (the
  // rapid-reset pattern: ~13 KB of gRPC call state per stream) is freed by
  // gRPC once the calls are cancelled, but glibc keeps the pages in its
  // per-thread arenas: 1.3 GB stayed resident after a burst, 2.5 MB after a
  // trim. When nothing was freed a trim costs microseconds.
  // SIGHUP (from the supervisor): re-read --auth-file (access_control.h).
  sigaddset(&stop_signals, SIGHUP);
  int sig = -1;
  const timespec trim_interval = absl::ToTimespec(kTrimInterval);
  while (sig < 0) {
    sig = sigtimedwait(&stop_signals, nullptr, &trim_interval);
    if (sig == SIGHUP) {
      (void)access.Reload();
      sig = -1;
    } else if (sig < 0) {
      malloc_trim(0);
    }
  }

  absl::Time drain_deadline = MonotonicNow() + options.drain_timeout;
  table->SetReady(false);
  health.SetNotServing();
  service.StartDraining(drain_deadline);
  streams.StartDraining();
  listeners.Stop();  // closes the gates' listeners: no connection is handed over past here
  ConnectionGate::Counts counts = listeners.counts();
  Log(LogLevel::kDebug, "handler draining",
      {{"signal", sig},
       {"connections_accepted", counts.accepted},
       {"connections_refused", counts.refused},
       {"handshake_timeouts", counts.handshake_timeouts}});
  // Calls in flight: every RPC but Snapshot finishes inline on the serving
  // thread, and from now on they fail fast with UNAVAILABLE; Snapshot calls
  // give up by the drain deadline. gRPC's Shutdown(deadline) would also wait
  // for every idle client connection to go away, which long-lived clients
  // never do by themselves; so once our calls are done, give the rest a
  // short grace and then close what is left.
  service.WaitForSnapshotWaiters();
  // Health watches end by themselves once they have sent NOT_SERVING; a
  // watch cut by the grace below would end with a reset, not OK.
  if (!health.WaitForWatchesToEnd(drain_deadline)) {
    Log(LogLevel::kWarning, "drain timeout: health watches still open are cut",
        {{"watches", static_cast<uint64_t>(health.watchers())}});
  }
  // IncrementStreams end UNAVAILABLE once their answers are written; one
  // whose client does not read them is cut by the grace below.
  if (!streams.WaitForStreamsToEnd(drain_deadline)) {
    Log(LogLevel::kWarning, "drain timeout: increment streams still open are cut",
        {{"streams", static_cast<uint64_t>(streams.open_streams())}});
  }
  // The serving thread keeps polling through Shutdown (it completes the
  // async calls still in flight); then it shuts the queue down and drains it.
  server->Shutdown(GrpcDeadlineAfter(std::min(drain_deadline - MonotonicNow(), kShutdownGrace)));
  list_calls.Stop();  // its hand-backs land on the queue the loop still polls
  group_commit.reset();  // so do its: every durable call still waiting is answered
  loop.Stop();
  serving.join();
  server.reset();
  cq.reset();
  Log(LogLevel::kDebug, "handler stopped");
  return 0;
}

}  // namespace countersd
