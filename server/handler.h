// A handler process: one grpc::Server on the shared port, serving
// counters.v1.CounterService from the shared table, plus grpc.health.v1 and
// server reflection.
//
// Threading (nginx's worker event loop is the model). Every CounterService
// RPC but Snapshot uses gRPC's completion-queue (async) API: one thread per
// handler process polls the process's one ServerCompletionQueue and runs
// each call inline, so a call is read, handled and answered on one thread
// with no hand-off between threads. gRPC's callback API costs ~5 context
// switches and futex calls per call here: its callback queue has two
// threads of its own that take turns polling. So no service of this server
// uses the callback API, not even health: gRPC's default health service is
// a callback service, and one callback method anywhere brings those threads
// back. Snapshot, which blocks until the aggregator has written a snapshot,
// and health and reflection, which are rare, use the sync API; their
// threads never poll (gRPC makes a server's sync queues non-polling when it
// also has a polled async queue), so they do not compete with the serving
// thread.
#ifndef COUNTERSD_SERVER_HANDLER_H_
#define COUNTERSD_SERVER_HANDLER_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "counters/v1/counters.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/alarm.h"
#include "shared/counter_table.h"

namespace countersd {

// The RPCs. Thin: validate the request, call the table, map the status in
// one place (status_mapping.h) and count the call in this process's stats
// slot (CountCall; any non-OK status counts as an error).
// Thread-safe: ServeCompletionQueue runs the async RPCs on the thread that
// calls it; gRPC calls Snapshot from its sync threads.
//
// The base: every method async but Snapshot, which stays sync.
using CounterServiceBase = counters::v1::CounterService::WithAsyncMethod_Increment<
    counters::v1::CounterService::WithAsyncMethod_IncrementBatch<
        counters::v1::CounterService::WithAsyncMethod_Get<
            counters::v1::CounterService::WithAsyncMethod_BatchGet<
                counters::v1::CounterService::WithAsyncMethod_List<
                    counters::v1::CounterService::WithAsyncMethod_Set<
                        counters::v1::CounterService::WithAsyncMethod_CompareAndSet<
                            counters::v1::CounterService::WithAsyncMethod_Delete<
                                counters::v1::CounterService::WithAsyncMethod_GetStats<
                                    counters::v1::CounterService::Service>>>>>>>>>;

class CounterServiceImpl final : public CounterServiceBase {
 public:
  // `table` must outlive the service. `max_batch` <= kMaxBatchOps.
  CounterServiceImpl(CounterTable* table, size_t max_batch);
  ~CounterServiceImpl() override;

  // After this, every new call fails UNAVAILABLE, and Snapshot calls still
  // waiting give up by `give_up_at` (UNAVAILABLE).
  void StartDraining(absl::Time give_up_at);
  // Blocks until no Snapshot call is waiting.
  void WaitForSnapshotWaiters();

  // Serves the async RPCs (all but Snapshot) from `cq` on the calling
  // thread: keeps requests posted on it, and runs each call inline
  // when it arrives. Returns once `cq` is shut down and drained. Call state
  // is recycled through a free list per method, so a call allocates no
  // state of its own.
  // REQUIRES: `cq` comes from the builder that registered this service;
  // exactly one thread calls this, for one queue.
  void ServeCompletionQueue(grpc::ServerCompletionQueue* cq);
  // Makes ServeCompletionQueue(cq) shut `cq` down, drain it and return.
  // The serving thread shuts the queue down itself, so that it never posts
  // a request on a queue already shut down. REQUIRES: grpc::Server::Shutdown
  // has returned.
  void StopServingCompletionQueue(grpc::ServerCompletionQueue* cq);

  // Asks the aggregator for a snapshot and waits for it (a sync RPC, on
  // one of gRPC's sync threads; see control.h).
  grpc::Status Snapshot(grpc::ServerContext* ctx, const counters::v1::SnapshotRequest* req,
                        counters::v1::SnapshotResponse* resp) override;

  // The request handling itself, without gRPC (for the RPCs above).
  absl::Status DoIncrement(const counters::v1::IncrementRequest& req,
                           counters::v1::IncrementResponse* resp);
  absl::Status DoIncrementBatch(const counters::v1::IncrementBatchRequest& req,
                                counters::v1::IncrementBatchResponse* resp);
  absl::Status DoGet(const counters::v1::GetRequest& req, counters::v1::GetResponse* resp);
  absl::Status DoBatchGet(const counters::v1::BatchGetRequest& req,
                          counters::v1::BatchGetResponse* resp);
  absl::Status DoList(const counters::v1::ListRequest& req, counters::v1::ListResponse* resp);
  absl::Status DoSet(const counters::v1::SetRequest& req, counters::v1::SetResponse* resp);
  absl::Status DoCompareAndSet(const counters::v1::CompareAndSetRequest& req,
                               counters::v1::CompareAndSetResponse* resp);
  absl::Status DoDelete(const counters::v1::DeleteRequest& req, counters::v1::DeleteResponse* resp);
  // Blocks until a snapshot that started after this call is durable.
  // DEADLINE_EXCEEDED when `client_deadline` passes, UNAVAILABLE after
  // kSnapshotWaitCap or the drain deadline, INTERNAL if the snapshot failed.
  absl::Status DoSnapshot(absl::Time client_deadline, counters::v1::SnapshotResponse* resp);
  absl::Status DoGetStats(counters::v1::GetStatsResponse* resp);
  absl::Status DoGetStats(const counters::v1::GetStatsRequest& req,
                          counters::v1::GetStatsResponse* resp);

  static constexpr int kDefaultPageSize = 100;
  static constexpr int kMaxPageSize = 1000;
  // Longest a Snapshot call waits when the client sets no shorter deadline.
  static constexpr absl::Duration kSnapshotWaitCap = absl::Seconds(30);

 private:
  template <typename Request, typename Response>
  friend class AsyncUnaryMethod;

  bool draining() const { return draining_.load(std::memory_order_acquire); }

  CounterTable* const table_;
  const size_t max_batch_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> give_up_at_unix_ns_{INT64_MAX};
  std::mutex waiters_mu_;
  std::condition_variable waiters_cv_;
  int snapshot_waiters_ = 0;  // guarded by waiters_mu_
  grpc::Alarm stop_alarm_;    // fires the stop tag on the serving queue
};

// grpc.health.v1.Health: SERVING for "" and counters.v1.CounterService
// until SetNotServing(); NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch) for
// any other service. A sync service: its calls are rare, and a Watch blocks
// its thread until the client goes (noticed within a second) or the status
// changes to NOT_SERVING, when the stream ends OK. Thread-safe.
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

struct HandlerOptions {
  std::string address;  // numeric, resolved port (from PortReservation)
  size_t max_batch = 1000;
  absl::Duration drain_timeout = absl::Seconds(5);
};

// Entry point of a forked handler process; returns its exit code: 0 after
// a drain on SIGTERM/SIGINT, 1 if the server could not start (e.g.
// EADDRINUSE). REQUIRES: SIGTERM and SIGINT blocked, no gRPC object created
// in this process before.
int RunHandlerProcess(CounterTable* table, const HandlerOptions& options);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_HANDLER_H_
