// `counterctl bench --rpc=stream`: IncrementStreams driven as fast as their
// windows allow.
//
// How it works:
//  1. One sender thread per stream (--streams). It builds each message of
//     --batch increments (delta 1, keys drawn uniformly) in a message the
//     stream recycles (IncrementStream::NewRequest) and Sends it; Send
//     waits while --window messages are unanswered, so the sender runs at
//     the pace of the answers.
//  2. Before each Send the sender writes the send time into a ring indexed
//     by the sequence that Send will give (the stream's next: this thread
//     is its only sender), twice the window long, so a slot is never
//     rewritten before its answer has been read.
//  3. The result callback (gRPC's threads, one at a time per stream) reads
//     the slot: a message sent inside the measured window (after --warmup,
//     before the end of --duration) is counted by outcome, and an OK one's
//     latency (send to answer) goes into the stream's histogram.
//  4. At the end of --duration (or Ctrl-C) the senders stop, each stream
//     waits for its last results, and the histograms are merged.
//     Throughput = measured OK messages / (last measured answer - window
//     start), times --batch for increments.
#include "client/counterctl/bench_stream.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/counterctl/bench_report.h"
#include "client/counterctl/latency_histogram.h"
#include "client/counterctl/output.h"
#include "client/increment_stream.h"

namespace countersd::ctl {
namespace {

namespace v1 = ::counters::v1;
using Clock = BenchClock;

class StreamSender {
 public:
  StreamSender(const BenchConfig& config, const std::vector<std::string>& keys,
               std::shared_ptr<grpc::Channel> channel, uint64_t seed)
      : config_(config),
        keys_(keys),
        ring_(static_cast<size_t>(2 * config.window + 2)),
        rng_(seed | 1) {
    IncrementStreamOptions options;
    options.client.timeout = config.timeout;
    options.client.bearer_token = config.bearer_token;
    options.window = static_cast<int>(config.window);
    options.durable = config.durable;
    stream_ = std::make_unique<IncrementStream>(std::move(channel), options,
                                                [this](const StreamResult& r) { OnResult(r); });
  }

  // Sends until `stop` or the window's end; then waits for the results.
  void Run(Clock::time_point window_start, Clock::time_point window_end,
           const std::atomic<bool>* stop) {
    window_start_ = window_start;
    window_end_ = window_end;
    uint64_t next = 1;
    while (!stop->load(std::memory_order_relaxed)) {
      const Clock::time_point now = Clock::now();
      if (now >= window_end) break;
      v1::IncrementStreamRequest request = stream_->NewRequest();  // no allocation once warm
      for (int64_t i = 0; i < config_.batch; ++i) {
        v1::IncrementRequest* inc = request.add_increments();
        inc->set_key(NextKey());
        inc->set_delta(1);
      }
      ring_[next % ring_.size()] = Clock::now();
      absl::StatusOr<uint64_t> sent = stream_->Send(std::move(request));
      if (!sent.ok()) {
        if (send_error.empty()) send_error = sent.status().ToString();
        ++send_errors;
        if (sent.status().code() != absl::StatusCode::kDeadlineExceeded) break;
        continue;
      }
      next = *sent + 1;
    }
    stream_->Close(config_.timeout);
  }

  // Read after Run returned.
  LatencyHistogram histogram;
  uint64_t ok = 0, failed = 0, unknown = 0, send_errors = 0;
  CodeCounts failed_by_code{};
  std::string first_error;  // of the results (the callback's)
  std::string send_error;   // of Send (the sender's)
  Clock::time_point last_done{};
  std::atomic<uint64_t> progress_ok{0};
  IncrementStream::Stats stream_stats() const { return stream_->stats(); }

 private:
  const std::string& NextKey() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return keys_[((rng_ * 0x2545F4914F6CDD1DULL) >> 11) % keys_.size()];
  }

  void OnResult(const StreamResult& r) {
    const Clock::time_point now = Clock::now();
    const Clock::time_point sent = ring_[r.sequence % ring_.size()];
    if (r.outcome == StreamOutcome::kAnswered && r.status.ok()) {
      progress_ok.fetch_add(1, std::memory_order_relaxed);
    }
    if (sent < window_start_ || sent >= window_end_) return;
    last_done = now;
    if (r.outcome != StreamOutcome::kAnswered) {
      ++unknown;
    } else if (r.status.ok()) {
      ++ok;
      histogram.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count()));
      return;
    } else {
      ++failed;
      ++failed_by_code[std::min<size_t>(static_cast<size_t>(r.status.code()), 16)];
    }
    if (first_error.empty()) {
      first_error = absl::StrCat(StreamOutcomeName(r.outcome), ": ", r.status.ToString());
    }
  }

  const BenchConfig& config_;
  const std::vector<std::string>& keys_;
  std::vector<Clock::time_point> ring_;
  uint64_t rng_;
  Clock::time_point window_start_{}, window_end_{};
  std::unique_ptr<IncrementStream> stream_;
};

}  // namespace

int RunStreamLoad(const Invocation& inv, const BenchConfig& config,
                  const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                  const volatile std::sig_atomic_t* interrupted) {
  std::vector<std::string> keys;
  keys.reserve(config.keys);
  for (int64_t i = 0; i < config.keys; ++i) keys.push_back(absl::StrCat(config.key_prefix, i));
  uint64_t seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ 0x9E3779B97F4A7C15ULL;
  std::vector<std::unique_ptr<StreamSender>> senders;
  for (int64_t i = 0; i < config.streams; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    senders.push_back(
        std::make_unique<StreamSender>(config, keys, channels[i % channels.size()], seed));
  }
  const Clock::time_point start = Clock::now();
  const Clock::time_point window_start = start + absl::ToChronoNanoseconds(config.warmup);
  const Clock::time_point window_end =
      window_start + absl::ToChronoNanoseconds(config.duration.value_or(absl::Seconds(10)));
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& s : senders) {
    threads.emplace_back([&, sender = s.get()] { sender->Run(window_start, window_end, &stop); });
  }
  const bool progress = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
  while (Clock::now() < window_end && !*interrupted) {
    std::this_thread::sleep_until(std::min(window_end, Clock::now() + std::chrono::seconds(1)));
    if (progress) {
      uint64_t ok = 0;
      for (auto& s : senders) ok += s->progress_ok.load(std::memory_order_relaxed);
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      fputs(
          absl::StrFormat("\r\033[K%6.1fs %s  %s messages ok", t,
                          Clock::now() < window_start ? "warm-up " : "measured", WithThousands(ok))
              .c_str(),
          stderr);
      fflush(stderr);
    }
  }
  stop.store(true, std::memory_order_relaxed);
  for (std::thread& t : threads) t.join();
  if (progress) fputs("\r\033[K", stderr);

  LatencyHistogram histogram;
  uint64_t ok = 0, failed = 0, unknown = 0, send_errors = 0, breaks = 0;
  CodeCounts by_code{};
  std::string first_error;
  Clock::time_point last_done = window_start;
  for (auto& s : senders) {
    histogram.Merge(s->histogram);
    ok += s->ok;
    failed += s->failed;
    unknown += s->unknown;
    send_errors += s->send_errors;
    breaks += s->stream_stats().breaks;
    for (size_t c = 0; c < by_code.size(); ++c) by_code[c] += s->failed_by_code[c];
    if (first_error.empty()) first_error = s->first_error;
    if (first_error.empty()) first_error = s->send_error;
    last_done = std::max(last_done, s->last_done);
  }
  const double elapsed = std::chrono::duration<double>(last_done - window_start).count();
  const double messages_per_s = elapsed > 0 ? ok / elapsed : 0.0;
  const double increments_per_s = messages_per_s * static_cast<double>(config.batch);
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("rpc", "stream").Field("address", inv.address);
    j.Field("streams", config.streams).Field("window", config.window);
    j.Field("connections", static_cast<int64_t>(channels.size()));
    j.Field("keys", config.keys).Field("batch", config.batch);
    j.Field("warmup_seconds", absl::ToDoubleSeconds(config.warmup));
    j.Field("elapsed_seconds", elapsed).Field("interrupted", *interrupted != 0);
    j.Field("ok", ok).Field("failed", failed).Field("unknown", unknown);
    j.Field("send_errors", send_errors).Field("stream_breaks", breaks);
    WriteCodeCountsJson("failed_by_code", by_code, j);
    if (!first_error.empty()) j.Field("first_error", first_error);
    j.Field("messages_per_second", messages_per_s).Field("increments_per_second", increments_per_s);
    WriteLatencyJson(histogram, j);
    j.EndObject();
    PrintData(j.str() + "\n");
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"rpc", absl::StrCat("stream (IncrementStream, messages of ", config.batch, ")")},
        {"target", absl::StrCat(inv.address, ", ", config.streams, " streams over ",
                                channels.size(), " connections, window ", config.window, ", ",
                                WithThousands(config.keys), " keys")},
        {"measured",
         absl::StrFormat("%.2f s after %s warm-up%s", elapsed, absl::FormatDuration(config.warmup),
                         *interrupted ? " (interrupted)" : "")},
        {"messages", absl::StrCat(WithThousands(ok), " ok, ", WithThousands(failed), " failed, ",
                                  WithThousands(unknown), " unknown")},
        {"throughput",
         absl::StrCat(WithThousands(static_cast<uint64_t>(messages_per_s)), " messages/s, ",
                      WithThousands(static_cast<uint64_t>(increments_per_s)), " increments/s")},
        {"latency", absl::StrCat(LatencyLine(histogram), " (send to answer, per message)")},
    };
    if (breaks > 0) rows.push_back({"breaks", absl::StrCat(breaks, " streams broke and reopened")});
    AddCodeRows("failed", by_code, &rows);
    if (!first_error.empty()) rows.push_back({"first error", first_error});
    PrintData(FormatColumns(rows));
  }
  if (ok == 0) {
    PrintMessage(inv, first_error.empty() ? "no message was answered in the measured window"
                                          : absl::StrCat("no message succeeded: ", first_error));
    return kExitError;
  }
  if (failed + unknown + send_errors > 0) {
    PrintMessage(inv, absl::StrCat(failed + unknown + send_errors,
                                   " messages failed or were left unknown; first: ", first_error));
    return kExitError;
  }
  return kExitOk;
}

}  // namespace countersd::ctl
