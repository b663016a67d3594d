// counters.v1.CounterService: the RPCs of a handler process, over the shared
// table. See counter_service.cc for how Snapshot waits for the aggregator.
//
// Every RPC but Snapshot is async and raw: UnaryCallLoop (unary_call_loop.h)
// receives the request's bytes, decodes them (request_decoding.h) and runs
// each call inline on the handler's serving thread through HandleCall (List
// on the handler's List thread, low_priority_calls.h).
// Snapshot, which blocks until a snapshot is durable, is a sync RPC on one
// of gRPC's sync threads. The Do* methods are the request handling itself,
// without gRPC, so that they are unit-tested on a real table with no server.
#ifndef COUNTERSD_SERVER_COUNTER_SERVICE_H_
#define COUNTERSD_SERVER_COUNTER_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "counters/v1/counters.grpc.pb.h"
#include "server/access_control.h"
#include "server/call_identity.h"
#include "server/request_authorization.h"
#include "shared/counter_table.h"
#include "shared/stats_area.h"

namespace countersd {

// The base: every method async and raw (the serving loop parses requests
// and serializes responses itself, so that a request that does not parse
// gets INVALID_ARGUMENT, not gRPC's INTERNAL) but Snapshot, which stays sync.
using CounterServiceBase = counters::v1::CounterService::WithRawMethod_IncrementStream<
    counters::v1::CounterService::WithRawMethod_Increment<
        counters::v1::CounterService::WithRawMethod_IncrementBatch<
            counters::v1::CounterService::WithRawMethod_Get<
                counters::v1::CounterService::WithRawMethod_BatchGet<
                    counters::v1::CounterService::WithRawMethod_List<
                        counters::v1::CounterService::WithRawMethod_Set<
                            counters::v1::CounterService::WithRawMethod_CompareAndSet<
                                counters::v1::CounterService::WithRawMethod_Delete<
                                    counters::v1::CounterService::WithRawMethod_GetStats<
                                        counters::v1::CounterService::Service>>>>>>>>>>;

// The RPCs. Thin: validate the request, call the table, return an
// absl::Status that the caller maps to the reply's grpc::Status in one place
// (proto/status_conversion.h), and count the call, by method, status code
// and latency, in this handler's row of the stats area (stats_area.h).
// Thread-safe: the async RPCs run on the serving thread (List on the List
// thread, concurrently with the others), Snapshot on gRPC's
// sync threads, and StartDraining on the handler's main thread.
static_assert(std::size(kAllRpcMethods) == kStatsMethods, "a stats row counts every method");

class CounterServiceImpl final : public CounterServiceBase {
 public:
  // The request handling of one async RPC.
  template <typename Request, typename Response>
  using DoMethod = absl::Status (CounterServiceImpl::*)(const Request&, Response*);

  // `table` must outlive the service. `max_batch` <= kMaxBatchOps.
  // `access` (may be null: every call admitted) must outlive the service.
  // `stats` (may be null: calls not counted, GetStats without them) must
  // outlive the service; the calls are counted in its row `stats_index`.
  CounterServiceImpl(CounterTable* table, size_t max_batch, AccessControl* access = nullptr,
                     const StatsArea* stats = nullptr, int stats_index = 0);
  ~CounterServiceImpl() override;

  // After this, every new call fails UNAVAILABLE, and Snapshot calls still
  // waiting give up by `give_up_at` (UNAVAILABLE).
  void StartDraining(absl::Time give_up_at);
  // Blocks until no Snapshot call is waiting.
  void WaitForSnapshotWaiters();

  // One call of an async RPC: UNAVAILABLE once draining (without calling
  // `handle`); else, with access control on, the call's checks
  // (access_control.h: UNAUTHENTICATED, PERMISSION_DENIED, before anything
  // is applied); else (this->*handle)(req, resp). The call is counted in
  // the handler's stats row either way. Returns the status to finish it
  // with. `ctx` null: a call with no credentials (tests).
  template <typename Request, typename Response>
  absl::Status HandleCall(DoMethod<Request, Response> handle, const grpc::ServerContext* ctx,
                          const Request& req, Response* resp) {
    const int64_t start = CallStart();
    absl::Status status = draining() ? DrainingError() : Authorized(handle, ctx, req, resp);
    // Only a request with WriteOptions can be durable (and only those run
    // on the serving thread, whose durable_write_ is; List runs on its own).
    if constexpr (requires(const Request& r) { r.options().durable(); }) {
      if (durable_write_.has_value()) {
        if (status.ok()) {
          // Counted once its record's sync is known (CountDurableWrite).
          durable_write_->method = RpcMethodOf<Request>::kMethod;
          durable_write_->start = start;
          return status;
        }
        durable_write_.reset();
      }
    }
    CountCall(RpcMethodOf<Request>::kMethod, status, start);
    return status;
  }
  template <typename Request, typename Response>
  absl::Status HandleCall(DoMethod<Request, Response> handle, const Request& req, Response* resp) {
    return HandleCall(handle, nullptr, req, resp);
  }
  // One call of an async RPC whose request did not decode
  // (request_decoding.h): counted as an error, like any non-OK reply, and
  // answered `decode_error` (even while draining: it names what is wrong),
  // unless access control refuses the caller the method first
  // (UNAUTHENTICATED, PERMISSION_DENIED: nothing about the request is
  // told to a caller that may not make it).
  template <typename Request>
  absl::Status RejectCall(const grpc::ServerContext* ctx, absl::Status decode_error) {
    const int64_t start = CallStart();
    absl::Status status = std::move(decode_error);
    if (access_ != nullptr && access_->enabled()) {
      absl::StatusOr<AccessControl::Admission> a =
          AdmitCall(*access_, ctx, RpcMethodOf<Request>::kMethod);
      if (!a.ok()) status = a.status();
    }
    CountCall(RpcMethodOf<Request>::kMethod, status, start);
    return status;
  }

  // Whether an IncrementStream may start (increment_stream.h): UNAVAILABLE
  // once draining; else, with access control on, the caller's admission to
  // the method (UNAUTHENTICATED, PERMISSION_DENIED, logged). Not counted:
  // each message is (HandleCall of DoIncrementStream).
  absl::Status AdmitStream(const grpc::ServerContext* ctx);

  // Asks the aggregator for a snapshot and waits for it (a sync RPC, on
  // one of gRPC's sync threads; see DoSnapshot).
  grpc::Status Snapshot(grpc::ServerContext* ctx, const counters::v1::SnapshotRequest* req,
                        counters::v1::SnapshotResponse* resp) override;

  // The request handling itself, without gRPC. Each fills `resp` and
  // returns OK, or returns the error of the RPC (the codes
  // proto/counters/v1/counters.proto lists for it), naming the bad field
  // (and its index in a batch).
  absl::Status DoIncrement(const counters::v1::IncrementRequest& req,
                           counters::v1::IncrementResponse* resp);
  // INVALID_ARGUMENT for an empty batch or a bad key ("increments[i]: ...");
  // RESOURCE_EXHAUSTED for more than max_batch increments.
  absl::Status DoIncrementBatch(const counters::v1::IncrementBatchRequest& req,
                                counters::v1::IncrementBatchResponse* resp);
  // One message of an IncrementStream: DoIncrementBatch's semantics and
  // codes, the values into `resp` (its sequence, code and message are the
  // stream's to set).
  absl::Status DoIncrementStream(const counters::v1::IncrementStreamRequest& req,
                                 counters::v1::IncrementStreamResponse* resp);
  absl::Status DoGet(const counters::v1::GetRequest& req, counters::v1::GetResponse* resp);
  // One entry per key, in order; RESOURCE_EXHAUSTED for more than max_batch
  // keys, INVALID_ARGUMENT for a bad key ("keys[i]: ...").
  absl::Status DoBatchGet(const counters::v1::BatchGetRequest& req,
                          counters::v1::BatchGetResponse* resp);
  // Sorted by key; page_size 0 means kDefaultPageSize, at most kMaxPageSize.
  // INVALID_ARGUMENT for a page_token that is not a key with the prefix.
  absl::Status DoList(const counters::v1::ListRequest& req, counters::v1::ListResponse* resp);
  // DoList over `ranges` (access_control.h, ListRanges): only the keys
  // under them, sorted, paged the same way.
  absl::Status DoListInRanges(const counters::v1::ListRequest& req,
                              const std::vector<std::string>& ranges,
                              counters::v1::ListResponse* resp);
  absl::Status DoSet(const counters::v1::SetRequest& req, counters::v1::SetResponse* resp);
  absl::Status DoCompareAndSet(const counters::v1::CompareAndSetRequest& req,
                               counters::v1::CompareAndSetResponse* resp);
  absl::Status DoDelete(const counters::v1::DeleteRequest& req, counters::v1::DeleteResponse* resp);
  // Blocks until a snapshot that started after this call is durable.
  // DEADLINE_EXCEEDED when `client_deadline` passes, UNAVAILABLE after
  // kSnapshotWaitCap or the drain deadline, INTERNAL if the snapshot failed.
  absl::Status DoSnapshot(absl::Time client_deadline, counters::v1::SnapshotResponse* resp);
  // The handlers' stats slots and stats rows, the table's size, the last
  // snapshot, the daemon's uptime and restarts (the stats area).
  absl::Status DoGetStats(const counters::v1::GetStatsRequest& req,
                          counters::v1::GetStatsResponse* resp);

  // Durable writes (shared/write_ahead_log.h): this handler logs them
  // (its GroupCommit started); without, they are refused UNAVAILABLE.
  void EnableDurableWrites() { durable_writes_ = true; }
  // A durable write applied and not yet answered: the record to log
  // before it is, and what its count in the stats row needs (HandleCall
  // leaves it uncounted: its outcome is its sync's, and its latency
  // includes the sync).
  // (No default member initializers: clang cannot default-construct a
  // nested struct that has them inside the class that encloses it.)
  struct DurableWrite {
    WalRecord record;
    RpcMethod method;
    int64_t start;
  };
  // The durable write the serving thread just handled (HandleCall of a Do*
  // method that returned OK); nullopt for any other call. Serving thread
  // only.
  std::optional<DurableWrite> TakeDurableWrite();
  // Counts `write` as answered with `outcome` (its sync's: OK or
  // INTERNAL). Any thread (the commit thread).
  void CountDurableWrite(const DurableWrite& write, const absl::Status& outcome) {
    CountCall(write.method, outcome, write.start);
  }

  // Whether StartDraining was called. Any thread.
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  // UNAVAILABLE: what every call gets once the handler drains.
  static absl::Status DrainingError();

  static constexpr int kDefaultPageSize = 100;
  static constexpr int kMaxPageSize = 1000;
  // Longest a Snapshot call waits when the client sets no shorter deadline.
  static constexpr absl::Duration kSnapshotWaitCap = absl::Seconds(30);

 private:
  // A non-plain write's control; durable ones refused without a log.
  template <typename Request>
  absl::StatusOr<WriteControl> ControlOf(const counters::v1::WriteOptions& options,
                                         const Request& request);
  // With control.durable: the record to log (its effect, or for a
  // duplicate the keys' values now), kept for TakeDurableWrite.
  absl::Status LogIfDurable(const WriteControl& control, const WriteResponse& response,
                            std::vector<WalOp> ops, absl::Span<const std::string_view> keys);
  // Validates and applies `increments` atomically (IncrementBatch, a
  // stream's message), once per session and sequence when `options` name
  // one (server/write_session.h); the value after each into `values`.
  absl::Status IncrementAll(
      const google::protobuf::RepeatedPtrField<counters::v1::IncrementRequest>& increments,
      const counters::v1::WriteOptions& options,
      google::protobuf::RepeatedField<int64_t>* values);
  // The access checks of one call, then the call (see HandleCall).
  template <typename Request, typename Response>
  absl::Status Authorized(DoMethod<Request, Response> handle, const grpc::ServerContext* ctx,
                          const Request& req, Response* resp) {
    if (access_ == nullptr || !access_->enabled()) return (this->*handle)(req, resp);
    absl::StatusOr<AccessControl::Admission> a =
        AdmitCall(*access_, ctx, RpcMethodOf<Request>::kMethod);
    if (!a.ok()) return a.status();
    if constexpr (std::is_same_v<Request, counters::v1::ListRequest>) {
      absl::StatusOr<std::vector<std::string>> ranges = access_->ListRanges(*a, req.prefix());
      if (!ranges.ok()) return ranges.status();
      return DoListInRanges(req, *ranges, resp);
    } else {
      if (absl::Status s = AuthorizeKeys(*access_, *a, req); !s.ok()) return s;
      return (this->*handle)(req, resp);
    }
  }
  // A call's start for CountCall (0 when calls are not counted).
  int64_t CallStart() const { return row_ != nullptr ? StatsArea::Now() : 0; }
  // One call of `method` that ended with `status`, started at `start`: its
  // row's relaxed adds (StatsArea::RecordCall).
  void CountCall(RpcMethod method, const absl::Status& status, int64_t start) {
    if (row_ == nullptr) return;
    StatsArea::RecordCall(*row_, static_cast<int>(method), static_cast<int>(status.code()),
                          StatsArea::Now() - start);
  }

  CounterTable* const table_;
  const size_t max_batch_;
  bool durable_writes_ = false;
  std::optional<DurableWrite> durable_write_;  // serving thread's (TakeDurableWrite)
  AccessControl* const access_;
  const StatsArea* const stats_;
  HandlerStatsRow* const row_;  // stats_'s row of this handler; null without stats_
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> give_up_at_ns_{INT64_MAX};  // MonotonicNow nanoseconds
  std::mutex waiters_mu_;
  std::condition_variable waiters_cv_;
  int snapshot_waiters_ = 0;  // guarded by waiters_mu_
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_COUNTER_SERVICE_H_
