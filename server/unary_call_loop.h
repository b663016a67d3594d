// The serving loop of a handler process: every CounterService RPC but
// Snapshot (IncrementStream's streams through increment_stream.h), and
// grpc.health.v1.Health (Check and Watch), served from one gRPC completion
// queue on one thread (List's pages prepared on a thread of lower priority,
// low_priority_calls.h). See unary_call_loop.cc for how it works
// and what bounds its call pool, and handler_process.cc for why one thread
// and the async API.
#ifndef COUNTERSD_SERVER_UNARY_CALL_LOOP_H_
#define COUNTERSD_SERVER_UNARY_CALL_LOOP_H_

#include <atomic>
#include <cstddef>

#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "grpcpp/server_context.h"
#include "server/counter_service.h"
#include "shared/counter_table.h"

namespace countersd {

class HealthServiceImpl;
class IncrementStreams;
class LowPriorityCalls;
class GroupCommit;

// A tag on the serving loop's queue: its address is what the queue returns,
// and the loop calls Proceed with the completion's `ok` on the serving
// thread. Everything posted on the queue (calls, watches, alarms) is one.
class AsyncTag {
 public:
  virtual ~AsyncTag() = default;
  // The completion of this tag's pending operation.
  virtual void Proceed(bool ok) = 0;
};

// Where and how often a serving loop beats its heartbeat.
struct LoopHeartbeat {
  CounterTable* table = nullptr;  // null: no heartbeat
  // The longest the loop waits for a completion before it turns anyway.
  absl::Duration interval = absl::Seconds(1);
};

class UnaryCallLoop {
 public:
  // REQUIRES: `cq` comes from the builder that registered `service` and
  // `health` (may be null: no health service); all outlive this loop, and
  // so does `streams` (IncrementStream's calls on this queue; null: none is
  // ever answered).
  // `list_calls` (may be null: List is answered inline like the rest)
  // prepares List calls (decode, DoList, serialize), which this loop then
  // Finishes; stop it after grpc::Server::Shutdown has returned and before
  // Stop(), so that it hands nothing back to a queue shut down.
  // `group_commit` (may be null when the service refuses durable writes)
  // makes durable writes' records durable before they are answered; stop
  // it (destroy it) after grpc::Server::Shutdown and before Stop(), like
  // `list_calls`.
  UnaryCallLoop(CounterServiceImpl* service, HealthServiceImpl* health, IncrementStreams* streams,
                grpc::ServerCompletionQueue* cq, LoopHeartbeat heartbeat = {},
                LowPriorityCalls* list_calls = nullptr, GroupCommit* group_commit = nullptr);
  UnaryCallLoop(const UnaryCallLoop&) = delete;
  UnaryCallLoop& operator=(const UnaryCallLoop&) = delete;

  // Serves the async RPCs on the calling thread: keeps requests posted on the
  // queue and runs each call inline when it arrives
  // (CounterServiceImpl::HandleCall); serves health's Check and Watch
  // (HealthServiceImpl::StartServing). At every turn, and at least every
  // heartbeat interval when no completion comes, it beats the heartbeat
  // (CounterTable::Heartbeat): the supervisor kills a handler whose loop
  // stops turning (child_liveness.h). Returns once Stop() has been called
  // and the queue is shut down and drained. Call state is recycled through a
  // bounded free list per method (see unary_call_loop.cc for the bounds).
  // REQUIRES: exactly one thread calls this, once.
  void Run();

  // Makes Run() shut the queue down, drain it and return. The serving thread
  // shuts the queue down itself, so that it never posts a request on a queue
  // already shut down. Call from another thread, once.
  // REQUIRES: grpc::Server::Shutdown has returned.
  void Stop();

  // The unary call objects that exist now, over every method (posted,
  // being answered, or idle on a free list), and the most that ever existed
  // at once. Any thread; for tests and diagnostics.
  size_t calls() const { return calls_.load(std::memory_order_relaxed); }
  size_t peak_calls() const { return peak_calls_.load(std::memory_order_relaxed); }

  // The bounds of the pool, summed over the methods the loop serves: what
  // calls() never exceeds, and what it returns to once no call is in flight.
  static size_t MaxCalls();
  static size_t MaxIdleCalls();
  // The calls the loop keeps posted (what calls() is once Run has started
  // and before any call arrived).
  static size_t PostedCalls();
  // The most idle calls one method keeps beyond its posted ones.
  static size_t MaxFreeCallsPerMethod();

  GroupCommit* group_commit() const { return group_commit_; }

  // Counts call objects made and freed (the serving thread writes).
  void CallMade();
  void CallFreed() { calls_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  CounterServiceImpl* const service_;
  HealthServiceImpl* const health_;
  IncrementStreams* const streams_;
  grpc::ServerCompletionQueue* const cq_;
  const LoopHeartbeat heartbeat_;
  LowPriorityCalls* const list_calls_;
  GroupCommit* const group_commit_;
  grpc::Alarm stop_alarm_;  // fires the stop tag on the queue
  std::atomic<size_t> calls_{0};
  std::atomic<size_t> peak_calls_{0};
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_UNARY_CALL_LOOP_H_
