// `counterctl bench`: a closed-loop load generator for countersd.
//
// How it works:
//  1. It opens --connections channels. Each has its own subchannel pool
//     (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL) and a distinct channel argument, so
//     each is its own TCP connection and SO_REUSEPORT spreads them over the
//     daemon's handlers. It waits until every channel is connected.
//  2. It creates --concurrency CallSlots, spread round-robin over the
//     channels. A CallSlot owns everything one call needs (context, request,
//     response, a latency histogram) and keeps exactly one call in flight:
//     when a call finishes it records it and issues the next one from the same
//     objects. The request and response messages are reused (their strings
//     and repeated fields keep their capacity), the context is re-constructed
//     in place, the async reader lives in the call's arena, and the keys are
//     formatted once up front, so a call costs no heap allocation of ours.
//     Two gRPC APIs can drive the slots (--api):
//      - async (default): one CompletionQueue per client thread (--threads,
//        default 1); each thread polls its queue, records the finished call
//        and re-issues from the same thread, with no thread hand-off;
//      - callback: each slot is a ClientUnaryReactor; gRPC runs OnDone on its
//        own threads, which re-issue.
//     Either way a slot's calls never overlap, so a slot needs no lock.
//  3. Calls started during the warm-up (--warmup, default 1s) are not counted.
//     The measured window starts when the warm-up ends; a call belongs to it
//     if it started inside it. Issuing stops at the end of --duration or after
//     --requests measured calls, and the run ends when the last call returns.
//     Throughput = successful measured calls / (last completion - window
//     start). Only OK responses count toward throughput and latency; errors
//     are counted by status code and reported.
//  4. Latencies go into each slot's log-linear histogram (1.6% resolution);
//     the histograms are merged at the end for p50/p90/p99/p99.9/max.
//  5. On a terminal (stdout and stderr both a tty) a progress line is
//     refreshed every second on stderr. Ctrl-C stops issuing and reports what
//     was measured so far.
#include <grpc/support/time.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_callback.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/counterctl/cli.h"
#include "client/counterctl/latency_histogram.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"
#include "counters/v1/counters.grpc.pb.h"

namespace countersd::ctl {
namespace {

namespace v1 = ::counters::v1;
using Clock = std::chrono::steady_clock;

enum class RpcKind { kIncrement, kBatch, kGet };
// Which gRPC client API drives the calls.
//  kCallback: ClientUnaryReactor; completions run on gRPC's own threads.
//  kAsync: CompletionQueue per client thread (--threads); each thread polls
//          its queue and re-issues from the same thread, with no hand-offs.
enum class Engine { kCallback, kAsync };

absl::string_view RpcName(RpcKind k) {
  switch (k) {
    case RpcKind::kIncrement:
      return "increment";
    case RpcKind::kBatch:
      return "batch";
    case RpcKind::kGet:
      return "get";
  }
  return "?";
}

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
};

volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

class Bench;

// Keeps one call in flight at a time; see the top of this file.
// With Engine::kAsync the same object is the completion-queue tag; its
// reactor part is unused.
class CallSlot final : public grpc::ClientUnaryReactor {
 public:
  // `cq` is the slot's completion queue for Engine::kAsync, else null.
  CallSlot(Bench* bench, v1::CounterService::Stub* stub, grpc::CompletionQueue* cq, uint64_t seed);

  // Starts the next call and returns true, or tells the Bench this slot is
  // finished and returns false (then `this` must not be touched again by
  // the caller, except by an async thread that still owns its queue).
  bool Issue();
  // Records a finished call.
  void Complete(const grpc::Status& status);
  // Callback engine: record, then issue the next call.
  void OnDone(const grpc::Status& status) override {
    Complete(status);
    Issue();
  }
  // Async engine: the status Finish() filled in.
  const grpc::Status& async_status() const { return async_status_; }

  // Results, read by the main thread only after every slot finished.
  LatencyHistogram histogram;
  uint64_t ok = 0;
  std::array<uint64_t, 17> errors_by_code{};
  std::string first_error;
  Clock::time_point last_done{};
  // Completed calls (OK / failed), for the progress line. Written by this
  // slot only (relaxed), read by the main thread.
  std::atomic<uint64_t> progress_ok{0};
  std::atomic<uint64_t> progress_errors{0};

 private:
  const std::string& NextKey();

  Bench* const bench_;
  v1::CounterService::Stub* const stub_;
  grpc::CompletionQueue* const cq_;
  uint64_t rng_;
  std::optional<grpc::ClientContext> context_;
  Clock::time_point started_{};
  bool measured_ = false;
  v1::IncrementRequest increment_request_;
  v1::IncrementResponse increment_response_;
  v1::IncrementBatchRequest batch_request_;
  v1::IncrementBatchResponse batch_response_;
  v1::GetRequest get_request_;
  v1::GetResponse get_response_;
  // Async engine. The readers live in the call's arena (no heap allocation)
  // and are replaced by the next call's.
  grpc::Status async_status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::IncrementResponse>> increment_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::IncrementBatchResponse>> batch_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::GetResponse>> get_reader_;
};

class Bench {
 public:
  explicit Bench(const BenchConfig& config) : config_(config) {
    keys_.reserve(config.keys);
    for (int64_t i = 0; i < config.keys; ++i) keys_.push_back(absl::StrCat(config.key_prefix, i));
  }

  const BenchConfig& config() const { return config_; }
  const std::vector<std::string>& keys() const { return keys_; }
  gpr_timespec Deadline() const {
    return gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC),
        gpr_time_from_nanos(absl::ToInt64Nanoseconds(config_.timeout), GPR_TIMESPAN));
  }

  // Decides whether a slot may start a call at `now`, and whether that call
  // is measured (started after the warm-up).
  bool ShouldIssue(Clock::time_point now, bool* measured) {
    if (stop_.load(std::memory_order_relaxed)) return false;
    *measured = now >= window_start_;
    if (!*measured) return true;
    if (has_end_ && now >= window_end_) return false;
    if (config_.requests > 0) {
      return requests_left_.fetch_sub(1, std::memory_order_relaxed) > 0;
    }
    return true;
  }

  void SlotFinished() {
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) all_done_.Notify();
  }

  // Runs the load; returns once every slot has finished.
  void Run(std::vector<std::shared_ptr<grpc::Channel>>& channels, bool progress);
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

  std::vector<std::unique_ptr<CallSlot>>& slots() { return slots_; }
  Clock::time_point window_start() const { return window_start_; }

 private:
  void PrintProgress(Clock::time_point start);

  const BenchConfig config_;
  std::vector<std::string> keys_;
  std::vector<std::unique_ptr<v1::CounterService::Stub>> stubs_;
  std::vector<std::unique_ptr<CallSlot>> slots_;
  Clock::time_point window_start_{};
  Clock::time_point window_end_{};
  bool has_end_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> requests_left_{0};
  std::atomic<int64_t> active_{0};
  absl::Notification all_done_;
  uint64_t last_progress_ok_ = 0;
  Clock::time_point last_progress_time_{};
};

CallSlot::CallSlot(Bench* bench, v1::CounterService::Stub* stub, grpc::CompletionQueue* cq,
                   uint64_t seed)
    : bench_(bench), stub_(stub), cq_(cq), rng_(seed | 1) {
  const BenchConfig& c = bench->config();
  increment_request_.set_delta(1);
  if (c.rpc == RpcKind::kBatch) {
    batch_request_.mutable_increments()->Reserve(static_cast<int>(c.batch));
    for (int64_t i = 0; i < c.batch; ++i) batch_request_.add_increments()->set_delta(1);
  }
}

const std::string& CallSlot::NextKey() {
  // xorshift64*: cheap, good enough to spread keys uniformly.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  const uint64_t r = rng_ * 0x2545F4914F6CDD1DULL;
  const auto& keys = bench_->keys();
  return keys[(r >> 11) % keys.size()];
}

bool CallSlot::Issue() {
  const Clock::time_point now = Clock::now();
  if (!bench_->ShouldIssue(now, &measured_)) {
    bench_->SlotFinished();  // the callback engine's last touch of `this`
    return false;
  }
  started_ = now;
  // The previous call's reader lives in the previous context's call arena:
  // drop it before that context goes.
  increment_reader_.reset();
  batch_reader_.reset();
  get_reader_.reset();
  context_.emplace();
  context_->set_deadline(bench_->Deadline());
  void* tag = this;
  switch (bench_->config().rpc) {
    case RpcKind::kIncrement:
      increment_request_.set_key(NextKey());
      if (cq_ != nullptr) {
        increment_reader_ = stub_->PrepareAsyncIncrement(&*context_, increment_request_, cq_);
        increment_reader_->StartCall();
        increment_reader_->Finish(&increment_response_, &async_status_, tag);
        return true;
      }
      stub_->async()->Increment(&*context_, &increment_request_, &increment_response_, this);
      break;
    case RpcKind::kBatch:
      for (v1::IncrementRequest& inc : *batch_request_.mutable_increments()) {
        inc.set_key(NextKey());
      }
      if (cq_ != nullptr) {
        batch_reader_ = stub_->PrepareAsyncIncrementBatch(&*context_, batch_request_, cq_);
        batch_reader_->StartCall();
        batch_reader_->Finish(&batch_response_, &async_status_, tag);
        return true;
      }
      stub_->async()->IncrementBatch(&*context_, &batch_request_, &batch_response_, this);
      break;
    case RpcKind::kGet:
      get_request_.set_key(NextKey());
      if (cq_ != nullptr) {
        get_reader_ = stub_->PrepareAsyncGet(&*context_, get_request_, cq_);
        get_reader_->StartCall();
        get_reader_->Finish(&get_response_, &async_status_, tag);
        return true;
      }
      stub_->async()->Get(&*context_, &get_request_, &get_response_, this);
      break;
  }
  StartCall();
  return true;
}

void CallSlot::Complete(const grpc::Status& status) {
  const Clock::time_point now = Clock::now();
  if (status.ok()) {
    if (measured_) {
      histogram.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - started_).count()));
      ++ok;
      last_done = now;
    }
    progress_ok.store(progress_ok.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    if (measured_) {
      const size_t code = static_cast<size_t>(status.error_code());
      ++errors_by_code[code < errors_by_code.size() ? code : 2 /* UNKNOWN */];
      if (first_error.empty()) {
        first_error = absl::StrCat(
            absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())), ": ",
            status.error_message());
      }
      last_done = now;
    }
    progress_errors.store(progress_errors.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  }
}

// One client thread of the async engine: starts its slots' first calls, then
// completes and re-issues until every one of its slots is finished, then
// shuts its queue down and drains it.
void RunAsyncThread(grpc::CompletionQueue* cq, const std::vector<CallSlot*>& slots) {
  size_t active = 0;
  for (CallSlot* slot : slots) active += slot->Issue() ? 1 : 0;
  void* tag;
  bool ok;
  while (active > 0 && cq->Next(&tag, &ok)) {
    CallSlot* slot = static_cast<CallSlot*>(tag);
    slot->Complete(slot->async_status());
    if (!slot->Issue()) --active;
  }
  cq->Shutdown();
  while (cq->Next(&tag, &ok)) {
  }
}

void Bench::Run(std::vector<std::shared_ptr<grpc::Channel>>& channels, bool progress) {
  for (auto& ch : channels) stubs_.push_back(v1::CounterService::NewStub(ch));
  const bool async = config_.engine == Engine::kAsync;
  const int64_t threads = async ? std::min(config_.threads, config_.concurrency) : 0;
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
  std::vector<std::vector<CallSlot*>> slots_of_thread(threads);
  for (int64_t t = 0; t < threads; ++t) queues.push_back(std::make_unique<grpc::CompletionQueue>());
  uint64_t seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ 0x9E3779B97F4A7C15ULL;
  for (int64_t i = 0; i < config_.concurrency; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    grpc::CompletionQueue* cq = async ? queues[i % threads].get() : nullptr;
    slots_.push_back(std::make_unique<CallSlot>(this, stubs_[i % stubs_.size()].get(), cq, seed));
    if (async) slots_of_thread[i % threads].push_back(slots_.back().get());
  }
  const Clock::time_point start = Clock::now();
  window_start_ = start + absl::ToChronoNanoseconds(config_.warmup);
  if (config_.duration.has_value()) {
    has_end_ = true;
    window_end_ = window_start_ + absl::ToChronoNanoseconds(*config_.duration);
  }
  requests_left_.store(config_.requests, std::memory_order_relaxed);
  active_.store(static_cast<int64_t>(slots_.size()), std::memory_order_relaxed);
  std::vector<std::thread> workers;
  if (async) {
    for (int64_t t = 0; t < threads; ++t) {
      workers.emplace_back(RunAsyncThread, queues[t].get(), std::cref(slots_of_thread[t]));
    }
  } else {
    for (auto& slot : slots_) slot->Issue();
  }
  while (!all_done_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    if (g_interrupted) Stop();
    if (progress) PrintProgress(start);
  }
  for (std::thread& w : workers) w.join();
  if (progress) fputs("\r\033[K", stderr);
}

void Bench::PrintProgress(Clock::time_point start) {
  uint64_t ok = 0, errors = 0;
  for (auto& s : slots_) {
    ok += s->progress_ok.load(std::memory_order_relaxed);
    errors += s->progress_errors.load(std::memory_order_relaxed);
  }
  const Clock::time_point now = Clock::now();
  if (last_progress_time_ == Clock::time_point{}) last_progress_time_ = start;
  const double dt = std::chrono::duration<double>(now - last_progress_time_).count();
  const double rate = dt > 0 ? (ok - last_progress_ok_) / dt : 0.0;
  last_progress_ok_ = ok;
  last_progress_time_ = now;
  const double t = std::chrono::duration<double>(now - start).count();
  std::string line = absl::StrFormat("\r\033[K%6.1fs %s  %s calls/s  %s ok  %s errors", t,
                                     now < window_start_ ? "warm-up " : "measured",
                                     WithThousands(static_cast<uint64_t>(rate)), WithThousands(ok),
                                     WithThousands(errors));
  fputs(line.c_str(), stderr);
  fflush(stderr);
}

// Creates each key once (IncrementBatch with delta 0) so that `get` finds them.
absl::Status CreateKeys(const std::shared_ptr<grpc::Channel>& channel, const BenchConfig& config,
                        const std::vector<std::string>& keys) {
  ClientOptions options;
  options.timeout = config.timeout;
  CounterClient client(channel, options);
  constexpr size_t kChunk = 500;
  std::vector<IncrementOp> ops;
  for (size_t i = 0; i < keys.size(); i += kChunk) {
    ops.clear();
    for (size_t k = i; k < std::min(keys.size(), i + kChunk); ++k) ops.push_back({keys[k], 0});
    absl::StatusOr<std::vector<int64_t>> r = client.IncrementBatch(ops);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

std::string FormatMicros(uint64_t ns) {
  const double us = ns / 1000.0;
  if (us >= 1000.0) return absl::StrFormat("%.2f ms", us / 1000.0);
  return absl::StrFormat("%.0f us", us);
}

int RunBench(const Invocation& inv) {
  BenchConfig config;
  config.timeout = inv.timeout;
  const std::string rpc = inv.Flag("rpc", "increment");
  if (rpc == "increment") {
    config.rpc = RpcKind::kIncrement;
  } else if (rpc == "batch") {
    config.rpc = RpcKind::kBatch;
  } else if (rpc == "get") {
    config.rpc = RpcKind::kGet;
  } else {
    return UsageError(inv,
                      absl::StrCat("--rpc must be increment, batch or get, got \"", rpc, "\""));
  }
  struct IntFlag {
    absl::string_view name;
    int64_t max;
    int64_t* out;
  };
  for (const IntFlag& f :
       {IntFlag{"keys", 100'000'000, &config.keys}, IntFlag{"batch", 1'000'000, &config.batch},
        IntFlag{"connections", 4096, &config.connections},
        IntFlag{"concurrency", 100'000, &config.concurrency},
        IntFlag{"requests", int64_t{1} << 62, &config.requests},
        IntFlag{"threads", 256, &config.threads}}) {
    if (!inv.Has(f.name)) continue;
    absl::StatusOr<int64_t> v = ParsePositiveFlag(inv.Flag(f.name), f.name, f.max);
    if (!v.ok()) return UsageError(inv, v.status().message());
    *f.out = *v;
  }
  if (inv.Has("duration")) {
    absl::StatusOr<absl::Duration> d = ParseDurationArg(inv.Flag("duration"), "--duration");
    if (!d.ok()) return UsageError(inv, d.status().message());
    config.duration = *d;
  } else if (config.requests == 0) {
    config.duration = absl::Seconds(10);
  }
  if (inv.Has("warmup")) {
    if (inv.Flag("warmup") == "0") {
      config.warmup = absl::ZeroDuration();
    } else {
      absl::StatusOr<absl::Duration> d = ParseDurationArg(inv.Flag("warmup"), "--warmup");
      if (!d.ok()) return UsageError(inv, d.status().message());
      config.warmup = *d;
    }
  }
  const std::string api = inv.Flag("api", "async");
  if (api == "async") {
    config.engine = Engine::kAsync;
  } else if (api == "callback") {
    config.engine = Engine::kCallback;
    if (inv.Has("threads")) return UsageError(inv, "--threads applies to --api=async only");
  } else {
    return UsageError(inv, absl::StrCat("--api must be async or callback, got \"", api, "\""));
  }
  if (config.rpc != RpcKind::kBatch) config.batch = 1;
  config.key_prefix = inv.Flag("key-prefix", config.key_prefix);
  if (absl::Status s = CheckKeyArg(absl::StrCat(config.key_prefix, config.keys - 1)); !s.ok()) {
    return UsageError(inv, absl::StrCat("--key-prefix gives bad keys: ", s.message()));
  }
  config.connections = std::min(config.connections, config.concurrency);

  // Connect every channel first, so that connection set-up is not measured
  // and an unreachable daemon is reported clearly.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  const gpr_timespec connect_deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                   gpr_time_from_nanos(absl::ToInt64Nanoseconds(inv.timeout), GPR_TIMESPAN));
  for (int64_t c = 0; c < config.connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("countersd.bench_connection", static_cast<int>(c));
    auto channel = grpc::CreateCustomChannel(inv.address, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(connect_deadline)) {
      return ReportError(inv, absl::UnavailableError(absl::StrCat(
                                  "connection ", c + 1, " of ", config.connections,
                                  " did not connect within ", absl::FormatDuration(inv.timeout))));
    }
    channels.push_back(std::move(channel));
  }

  Bench bench(config);
  if (config.rpc == RpcKind::kGet) {
    if (absl::Status s = CreateKeys(channels[0], config, bench.keys()); !s.ok()) {
      return ReportError(inv, s);
    }
  }
  const bool progress = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
  g_interrupted = 0;
  struct sigaction sa = {}, old_sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  bench.Run(channels, progress);
  sigaction(SIGINT, &old_sa, nullptr);

  // Merge the slots' results.
  LatencyHistogram histogram;
  uint64_t ok = 0, errors = 0;
  std::array<uint64_t, 17> by_code{};
  std::string first_error;
  Clock::time_point last_done = bench.window_start();
  for (auto& s : bench.slots()) {
    histogram.Merge(s->histogram);
    ok += s->ok;
    for (size_t c = 0; c < by_code.size(); ++c) {
      by_code[c] += s->errors_by_code[c];
      errors += s->errors_by_code[c];
    }
    if (first_error.empty()) first_error = s->first_error;
    last_done = std::max(last_done, s->last_done);
  }
  const double elapsed = std::chrono::duration<double>(last_done - bench.window_start()).count();
  const double calls_per_s = elapsed > 0 ? ok / elapsed : 0.0;
  const double ops_per_s = calls_per_s * static_cast<double>(config.batch);

  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("rpc", RpcName(config.rpc)).Field("address", inv.address);
    j.Field("api", config.engine == Engine::kAsync ? "async" : "callback");
    j.Field("threads", config.engine == Engine::kAsync ? config.threads : int64_t{0});
    j.Field("keys", config.keys).Field("batch", config.batch);
    j.Field("connections", config.connections).Field("concurrency", config.concurrency);
    j.Field("warmup_seconds", absl::ToDoubleSeconds(config.warmup));
    j.Field("elapsed_seconds", elapsed).Field("interrupted", g_interrupted != 0);
    j.Field("ok", ok).Field("errors", errors);
    j.Key("errors_by_code").BeginObject();
    for (size_t c = 0; c < by_code.size(); ++c) {
      if (by_code[c] > 0) {
        j.Field(absl::StatusCodeToString(static_cast<absl::StatusCode>(c)), by_code[c]);
      }
    }
    j.EndObject();
    if (!first_error.empty()) j.Field("first_error", first_error);
    j.Field("calls_per_second", calls_per_s).Field("ops_per_second", ops_per_s);
    j.Key("latency_us").BeginObject();
    j.Field("p50", histogram.Percentile(0.50) / 1000.0);
    j.Field("p90", histogram.Percentile(0.90) / 1000.0);
    j.Field("p99", histogram.Percentile(0.99) / 1000.0);
    j.Field("p999", histogram.Percentile(0.999) / 1000.0);
    j.Field("max", histogram.max() / 1000.0).Field("mean", histogram.mean() / 1000.0);
    j.EndObject().EndObject();
    PrintData(j.str() + "\n");
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"rpc",
         config.rpc == RpcKind::kBatch
             ? absl::StrCat("batch (IncrementBatch of ", config.batch, ")")
             : std::string(config.rpc == RpcKind::kGet ? "get (Get)" : "increment (Increment)")},
        {"target",
         absl::StrCat(inv.address, ", ", config.connections, " connections, ", config.concurrency,
                      " calls in flight, ", WithThousands(config.keys), " keys")},
        {"client", config.engine == Engine::kAsync
                       ? absl::StrCat("gRPC async API, ", config.threads,
                                      config.threads == 1 ? " thread" : " threads")
                       : std::string("gRPC callback API")},
        {"measured",
         absl::StrFormat("%.2f s after %s warm-up%s", elapsed, absl::FormatDuration(config.warmup),
                         g_interrupted ? " (interrupted)" : "")},
        {"calls", absl::StrCat(WithThousands(ok), " ok, ", WithThousands(errors), " errors")},
        {"throughput", absl::StrCat(WithThousands(static_cast<uint64_t>(calls_per_s)), " calls/s")},
    };
    if (config.rpc == RpcKind::kBatch) {
      rows.push_back(
          {"increments", absl::StrCat(WithThousands(static_cast<uint64_t>(ops_per_s)), "/s")});
    }
    rows.push_back({"latency", absl::StrCat("p50 ", FormatMicros(histogram.Percentile(0.5)),
                                            "  p90 ", FormatMicros(histogram.Percentile(0.9)),
                                            "  p99 ", FormatMicros(histogram.Percentile(0.99)),
                                            "  max ", FormatMicros(histogram.max()))});
    for (size_t c = 0; c < by_code.size(); ++c) {
      if (by_code[c] > 0) {
        rows.push_back(
            {"errors", absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(c)),
                                    ": ", WithThousands(by_code[c]))});
      }
    }
    if (!first_error.empty()) rows.push_back({"first error", first_error});
    PrintData(FormatColumns(rows));
  }
  if (ok == 0) {
    PrintMessage(inv, first_error.empty() ? "no call completed in the measured window"
                                          : absl::StrCat("every call failed: ", first_error));
    return kExitError;
  }
  if (errors > 0) {
    PrintMessage(inv, absl::StrCat(errors, " calls failed; first: ", first_error));
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

VerbSpec BenchVerb() {
  return {
      "bench",
      "",
      "load-test the daemon; print throughput and latency percentiles",
      "Drives countersd with --concurrency calls in flight over --connections\n"
      "separate TCP connections (gRPC callback API, one reusable call object per\n"
      "call in flight), and prints throughput and p50/p90/p99/max latency of the\n"
      "successful calls. Calls started during --warmup are not counted. Stops after\n"
      "--duration (default 10s) or --requests measured calls, whichever comes first.\n"
      "Keys are drawn uniformly from KEY_PREFIX0 .. KEY_PREFIX{N-1}; `get` creates\n"
      "them first. A progress line is shown when stdout and stderr are a terminal;\n"
      "Ctrl-C stops early and reports. Exits 1 if any call failed.\n"
      "\n"
      "Examples:\n"
      "  counterctl bench --rpc=increment --concurrency=64 --connections=8 --duration=10s\n"
      "  counterctl bench --rpc=increment --concurrency=1 --connections=1\n"
      "  counterctl bench --rpc=batch --batch=100 --output=json\n"
      "\n"
      "JSON: {\"rpc\":..,\"ok\":..,\"errors\":..,\"errors_by_code\":{..},\"elapsed_seconds\":..,\n"
      "       \"calls_per_second\":..,\"ops_per_second\":..,\n"
      "       "
      "\"latency_us\":{\"p50\":..,\"p90\":..,\"p99\":..,\"p999\":..,\"max\":..,\"mean\":..},...}\n",
      {
          {"rpc", "KIND", "increment (default), batch (IncrementBatch) or get"},
          {"keys", "N", "number of distinct keys (default 1000)"},
          {"batch", "N", "increments per IncrementBatch call (default 100)"},
          {"connections", "C", "separate channels/TCP connections (default 8)"},
          {"concurrency", "K", "calls in flight in total (default 64)"},
          {"duration", "DURATION", "measured time (default 10s unless --requests)"},
          {"requests", "N", "stop after N measured calls"},
          {"warmup", "DURATION", "unmeasured warm-up before the window (default 1s; 0: none)"},
          {"key-prefix", "PREFIX", "key prefix (default \"bench:\")"},
          {"api", "API", "async (default: completion queues) or callback (reactors)"},
          {"threads", "N", "client threads polling completion queues, --api=async (default 1)"},
      },
      0,
      0,
      "Daemon",
      RunBench};
}

}  // namespace countersd::ctl
