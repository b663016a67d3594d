// CallSlot and the Bench run loop, shared by both engines; how they work is
// at the top of bench_load.h.
#include "client/counterctl/bench_load.h"

#include <sys/random.h>

#include <algorithm>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/counterctl/output.h"
#include "proto/grpc_deadline.h"

namespace countersd::ctl {

namespace v1 = ::counters::v1;

absl::string_view RpcName(RpcKind k) {
  switch (k) {
    case RpcKind::kIncrement:
      return "increment";
    case RpcKind::kBatch:
      return "batch";
    case RpcKind::kGet:
      return "get";
    case RpcKind::kStream:
      return "stream";
    case RpcKind::kAccumulate:
      return "accumulate";
  }
  return "?";
}

CallSlot::CallSlot(Bench* bench, v1::CounterService::Stub* stub, uint64_t seed)
    : stub_(stub), bench_(bench), rng_(seed | 1) {
  const BenchConfig& c = bench->config();
  increment_request_.set_delta(1);
  if (c.rpc == RpcKind::kBatch) {
    batch_request_.mutable_increments()->Reserve(static_cast<int>(c.batch));
    for (int64_t i = 0; i < c.batch; ++i) batch_request_.add_increments()->set_delta(1);
  }
  v1::WriteOptions* options = c.rpc == RpcKind::kBatch ? batch_request_.mutable_options()
                                                       : increment_request_.mutable_options();
  options->set_durable(c.durable);
  if (c.session) {
    // The slot's own session (one call in flight: its sequences arrive in
    // order), random, so no two runs against one daemon share one.
    std::string id(16, '\0');
    if (getrandom(id.data(), id.size(), 0) != static_cast<ssize_t>(id.size())) {
      for (char& b : id) b = static_cast<char>(NextKey()[0] ^ (rng_ >> 56));
    }
    options->set_session_id(id);
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
  const BenchClock::time_point now = BenchClock::now();
  if (!bench_->ShouldIssue(now, &measured_)) {
    bench_->SlotFinished();  // the callback engine's last touch of `this`
    return false;
  }
  started_ = now;
  ReleaseCall();
  context_.emplace();
  context_->set_deadline(bench_->Deadline());
  if (!bench_->authorization().empty()) context_->AddMetadata("authorization", bench_->authorization());
  const RpcKind rpc = bench_->config().rpc;
  if (bench_->config().session) {
    (rpc == RpcKind::kBatch ? batch_request_.mutable_options()
                            : increment_request_.mutable_options())
        ->set_sequence(++sequence_);
  }
  switch (rpc) {
    case RpcKind::kIncrement:
      increment_request_.set_key(NextKey());
      break;
    case RpcKind::kBatch:
      for (v1::IncrementRequest& inc : *batch_request_.mutable_increments()) {
        inc.set_key(NextKey());
      }
      break;
    case RpcKind::kGet:
      get_request_.set_key(NextKey());
      break;
    case RpcKind::kStream:  // not CallSlot loads (bench_stream.h)
    case RpcKind::kAccumulate:
      break;
  }
  StartRpc(rpc);
  return true;
}

void CallSlot::Complete(const grpc::Status& status) {
  const BenchClock::time_point now = BenchClock::now();
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

Bench::Bench(const BenchConfig& config)
    : config_(config),
      authorization_(config.bearer_token.empty() ? std::string()
                                                 : absl::StrCat("Bearer ", config.bearer_token)) {
  keys_.reserve(config.keys);
  for (int64_t i = 0; i < config.keys; ++i) keys_.push_back(absl::StrCat(config.key_prefix, i));
}

gpr_timespec Bench::Deadline() const {
  return GrpcDeadlineAfter(config_.timeout);
}

bool Bench::ShouldIssue(BenchClock::time_point now, bool* measured) {
  if (stop_.load(std::memory_order_relaxed)) return false;
  *measured = now >= window_start_;
  if (!*measured) return true;
  if (has_end_ && now >= window_end_) return false;
  if (config_.requests > 0) {
    return requests_left_.fetch_sub(1, std::memory_order_relaxed) > 0;
  }
  return true;
}

void Bench::SlotFinished() {
  if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) all_done_.Notify();
}

void Bench::Run(const std::vector<std::shared_ptr<grpc::Channel>>& channels, bool progress,
                const volatile std::sig_atomic_t* interrupted) {
  for (const auto& ch : channels) stubs_.push_back(v1::CounterService::NewStub(ch));
  std::unique_ptr<LoadEngine> engine = config_.engine == Engine::kAsync
                                           ? NewAsyncEngine(config_.threads, config_.concurrency)
                                           : NewCallbackEngine();
  uint64_t seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ 0x9E3779B97F4A7C15ULL;
  for (int64_t i = 0; i < config_.concurrency; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    slots_.push_back(engine->NewSlot(this, i, stubs_[i % stubs_.size()].get(), seed));
  }
  const BenchClock::time_point start = BenchClock::now();
  window_start_ = start + absl::ToChronoNanoseconds(config_.warmup);
  if (config_.duration.has_value()) {
    has_end_ = true;
    window_end_ = window_start_ + absl::ToChronoNanoseconds(*config_.duration);
  }
  requests_left_.store(config_.requests, std::memory_order_relaxed);
  active_.store(static_cast<int64_t>(slots_.size()), std::memory_order_relaxed);
  engine->Start(slots_);
  while (!all_done_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    if (*interrupted) Stop();
    if (progress) PrintProgress(start);
  }
  engine->Join();
  if (progress) fputs("\r\033[K", stderr);
}

void Bench::PrintProgress(BenchClock::time_point start) {
  uint64_t ok = 0, errors = 0;
  for (auto& s : slots_) {
    ok += s->progress_ok.load(std::memory_order_relaxed);
    errors += s->progress_errors.load(std::memory_order_relaxed);
  }
  const BenchClock::time_point now = BenchClock::now();
  if (last_progress_time_ == BenchClock::time_point{}) last_progress_time_ = start;
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

}  // namespace countersd::ctl
