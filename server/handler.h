// A handler process: one grpc::Server (callback API) on the shared port,
// serving counters.v1.CounterService from the shared table, plus the gRPC
// health service and server reflection.
#ifndef COUNTERSD_SERVER_HANDLER_H_
#define COUNTERSD_SERVER_HANDLER_H_

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "counters/v1/counters.grpc.pb.h"
#include "shared/counter_table.h"

namespace countersd {

// The RPCs. Thin: validate the request, call the table, map the status in
// one place (status_mapping.h) and count the call in this process's stats
// slot (CountCall; any non-OK status counts as an error).
// Thread-safe: gRPC calls it from its callback threads.
class CounterServiceImpl final : public counters::v1::CounterService::CallbackService {
 public:
  // `table` must outlive the service. `max_batch` <= CounterTable::kMaxBatch().
  CounterServiceImpl(CounterTable* table, size_t max_batch);
  ~CounterServiceImpl() override;

  // After this, every new call fails UNAVAILABLE, and Snapshot calls still
  // waiting give up by `give_up_at` (UNAVAILABLE).
  void StartDraining(absl::Time give_up_at);
  // Blocks until no Snapshot call is waiting off the gRPC threads.
  void WaitForSnapshotWaiters();

  grpc::ServerUnaryReactor* Increment(grpc::CallbackServerContext* ctx,
                                      const counters::v1::IncrementRequest* req,
                                      counters::v1::IncrementResponse* resp) override;
  grpc::ServerUnaryReactor* IncrementBatch(grpc::CallbackServerContext* ctx,
                                           const counters::v1::IncrementBatchRequest* req,
                                           counters::v1::IncrementBatchResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const counters::v1::GetRequest* req,
                                counters::v1::GetResponse* resp) override;
  grpc::ServerUnaryReactor* BatchGet(grpc::CallbackServerContext* ctx,
                                     const counters::v1::BatchGetRequest* req,
                                     counters::v1::BatchGetResponse* resp) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx,
                                 const counters::v1::ListRequest* req,
                                 counters::v1::ListResponse* resp) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const counters::v1::SetRequest* req,
                                counters::v1::SetResponse* resp) override;
  grpc::ServerUnaryReactor* CompareAndSet(grpc::CallbackServerContext* ctx,
                                          const counters::v1::CompareAndSetRequest* req,
                                          counters::v1::CompareAndSetResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const counters::v1::DeleteRequest* req,
                                   counters::v1::DeleteResponse* resp) override;
  // Asks the aggregator for a snapshot and waits for it on a separate
  // thread (never on a gRPC callback thread); see control.h.
  grpc::ServerUnaryReactor* Snapshot(grpc::CallbackServerContext* ctx,
                                     const counters::v1::SnapshotRequest* req,
                                     counters::v1::SnapshotResponse* resp) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx,
                                     const counters::v1::GetStatsRequest* req,
                                     counters::v1::GetStatsResponse* resp) override;

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

  static constexpr int kDefaultPageSize = 100;
  static constexpr int kMaxPageSize = 1000;
  // Longest a Snapshot call waits when the client sets no shorter deadline.
  static constexpr absl::Duration kSnapshotWaitCap = absl::Seconds(30);

 private:
  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const absl::Status& status);
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  CounterTable* const table_;
  const size_t max_batch_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> give_up_at_unix_ns_{INT64_MAX};
  std::mutex waiters_mu_;
  std::condition_variable waiters_cv_;
  int snapshot_waiters_ = 0;  // guarded by waiters_mu_
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
