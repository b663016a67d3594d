// The load that `counterctl bench` drives: CallSlots, the Bench run loop and
// the interface of the two engines that issue the calls (bench_async.cc,
// bench_callback.cc). The verb itself (flags, report) is bench.cc.
//
// How it works:
//  1. Bench::Run is given the connected channels. It makes one stub per
//     channel and asks the engine for --concurrency CallSlots, spread
//     round-robin over the stubs.
//  2. A CallSlot owns everything one call needs (context, request, response,
//     a latency histogram) and keeps exactly one call in flight: when a call
//     finishes it records it (Complete) and issues the next one (Issue) from
//     the same objects. The request and response messages are reused (their
//     strings and repeated fields keep their capacity), the context is
//     re-constructed in place, and the keys are formatted once up front (by
//     the Bench), so a call costs no heap allocation of ours. What differs
//     between the engines is only how a call is started and who notices its
//     end: CallSlot::StartRpc and the engine's threads.
//  3. Calls started during the warm-up are not counted. The measured window
//     starts when the warm-up ends; a call belongs to it if it started inside
//     it (Bench::ShouldIssue decides, for every call, whether it may start
//     and whether it is measured). Issuing stops at the end of --duration,
//     after --requests measured calls, or on Stop(), and a slot whose next
//     call may not start is finished (Bench::SlotFinished). Run returns once
//     every slot has finished, i.e. when the last call has returned.
//  4. Meanwhile the thread that called Run wakes every second to poll the
//     interrupt flag (Ctrl-C: Stop) and, on a terminal, to refresh the
//     progress line on stderr.
// A slot's calls never overlap, so a slot's fields need no lock; only the
// progress counters are read by another thread while the load runs.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_BENCH_LOAD_H_
#define COUNTERSD_CLIENT_COUNTERCTL_BENCH_LOAD_H_

#include <grpc/support/time.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/counterctl/latency_histogram.h"
#include "counters/v1/counters.grpc.pb.h"

namespace countersd::ctl {

using BenchClock = std::chrono::steady_clock;

// kStream and kAccumulate are not driven by CallSlots: bench_stream.h.
enum class RpcKind { kIncrement, kBatch, kGet, kStream, kAccumulate };
// Which gRPC client API drives the calls.
//  kCallback: ClientUnaryReactor; completions run on gRPC's own threads.
//  kAsync: CompletionQueue per client thread (--threads); each thread polls
//          its queue and re-issues from the same thread, with no hand-offs.
enum class Engine { kCallback, kAsync };

absl::string_view RpcName(RpcKind k);

struct BenchConfig {
  RpcKind rpc = RpcKind::kIncrement;
  int64_t keys = 1000;
  int64_t batch = 100;  // increments per call for kBatch
  int64_t connections = 8;
  int64_t concurrency = 64;
  std::optional<absl::Duration> duration;  // default 10s when --requests is absent
  int64_t requests = 0;                    // 0: no limit
  absl::Duration warmup = absl::Seconds(1);
  std::string key_prefix = "bench:";
  absl::Duration timeout = absl::Seconds(5);
  Engine engine = Engine::kAsync;
  int64_t threads = 1;  // kAsync only
  // Sent with every call as "authorization: Bearer <token>" (empty: none).
  std::string bearer_token;
  // kStream: streams at once, and each one's window of unanswered messages.
  int64_t streams = 4;
  int64_t window = 16;
  // kAccumulate: the Accumulator's flush interval (`threads` are the
  // application threads calling Add).
  absl::Duration flush_interval = absl::Milliseconds(100);
  // kIncrement, kBatch: each write's WriteOptions. `session`: every call
  // slot writes under a session of its own (random id, sequence from 1);
  // `durable`: answered once synced (shared/write_ahead_log.h).
  bool session = false;
  bool durable = false;
};

class Bench;

// Keeps one call in flight at a time; see the top of this file. The engines
// derive from it and say how a call is started (StartRpc).
class CallSlot {
 public:
  CallSlot(Bench* bench, counters::v1::CounterService::Stub* stub, uint64_t seed);
  virtual ~CallSlot() = default;
  CallSlot(const CallSlot&) = delete;
  CallSlot& operator=(const CallSlot&) = delete;

  // Starts the next call and returns true, or tells the Bench this slot is
  // finished and returns false (then the slot must not be touched again,
  // except by an async thread that still owns its queue).
  bool Issue();
  // Records a finished call. REQUIRES: the call Issue started has finished.
  void Complete(const grpc::Status& status);

  // Results, read by the main thread only after every slot finished.
  LatencyHistogram histogram;
  uint64_t ok = 0;
  std::array<uint64_t, 17> errors_by_code{};
  std::string first_error;
  BenchClock::time_point last_done{};
  // Completed calls (OK / failed), for the progress line. Written by this
  // slot only (relaxed), read by the main thread.
  std::atomic<uint64_t> progress_ok{0};
  std::atomic<uint64_t> progress_errors{0};

 protected:
  // Called by Issue before the previous call's context is replaced:
  // whatever lives in that call's arena must go first.
  virtual void ReleaseCall() {}
  // Starts the call of `rpc` on the context, request and response below,
  // all set up for it. Its end must reach Complete and then Issue.
  virtual void StartRpc(RpcKind rpc) = 0;

  counters::v1::CounterService::Stub* const stub_;
  std::optional<grpc::ClientContext> context_;
  counters::v1::IncrementRequest increment_request_;
  counters::v1::IncrementResponse increment_response_;
  counters::v1::IncrementBatchRequest batch_request_;
  counters::v1::IncrementBatchResponse batch_response_;
  counters::v1::GetRequest get_request_;
  counters::v1::GetResponse get_response_;

 private:
  const std::string& NextKey();

  Bench* const bench_;
  uint64_t rng_;
  uint64_t sequence_ = 0;  // the slot's session's last (config().session)
  BenchClock::time_point started_{};
  bool measured_ = false;
};

// One way of issuing the slots' calls (bench_async.cc, bench_callback.cc).
// Bench::Run calls NewSlot --concurrency times, then Start once, then Join
// once every slot has finished.
class LoadEngine {
 public:
  virtual ~LoadEngine() = default;
  // The slot with index `index` (0, 1, ...), calling through `stub`.
  virtual std::unique_ptr<CallSlot> NewSlot(Bench* bench, int64_t index,
                                            counters::v1::CounterService::Stub* stub,
                                            uint64_t seed) = 0;
  // Issues every slot's first call. `slots` are the ones NewSlot returned.
  virtual void Start(const std::vector<std::unique_ptr<CallSlot>>& slots) = 0;
  // Returns once the engine's own threads are gone. REQUIRES: every slot
  // has finished.
  virtual void Join() = 0;
};

// Engine::kAsync: `threads` completion-queue threads (at most one per slot).
std::unique_ptr<LoadEngine> NewAsyncEngine(int64_t threads, int64_t concurrency);
// Engine::kCallback: reactors, re-issued from gRPC's own threads.
std::unique_ptr<LoadEngine> NewCallbackEngine();

class Bench {
 public:
  explicit Bench(const BenchConfig& config);

  const BenchConfig& config() const { return config_; }
  const std::vector<std::string>& keys() const { return keys_; }
  // The deadline of a call starting now (--timeout).
  gpr_timespec Deadline() const;
  // "Bearer <token>" for each call's metadata, or empty.
  const std::string& authorization() const { return authorization_; }

  // Decides whether a slot may start a call at `now`, and whether that call
  // is measured (started after the warm-up). Thread-safe.
  bool ShouldIssue(BenchClock::time_point now, bool* measured);
  // A slot will issue no more calls. Thread-safe.
  void SlotFinished();

  // Runs the load over `channels` with the configured engine; returns once
  // every slot has finished. `*interrupted` is polled every second: once it
  // is set no new call starts. `progress`: refresh a progress line on stderr.
  void Run(const std::vector<std::shared_ptr<grpc::Channel>>& channels, bool progress,
           const volatile std::sig_atomic_t* interrupted);
  // No call starts after this. Thread-safe.
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

  // After Run: every slot, with its results.
  const std::vector<std::unique_ptr<CallSlot>>& slots() const { return slots_; }
  BenchClock::time_point window_start() const { return window_start_; }

 private:
  void PrintProgress(BenchClock::time_point start);

  const BenchConfig config_;
  const std::string authorization_;
  std::vector<std::string> keys_;
  std::vector<std::unique_ptr<counters::v1::CounterService::Stub>> stubs_;
  std::vector<std::unique_ptr<CallSlot>> slots_;
  BenchClock::time_point window_start_{};
  BenchClock::time_point window_end_{};
  bool has_end_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> requests_left_{0};
  std::atomic<int64_t> active_{0};
  absl::Notification all_done_;
  uint64_t last_progress_ok_ = 0;
  BenchClock::time_point last_progress_time_{};
};

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_BENCH_LOAD_H_
