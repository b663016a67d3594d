// `counterctl bench --rpc=accumulate`: application threads calling
// Accumulator::Add, and a check that the daemon got exactly their sums.
//
// How it works:
//  1. It reads the keys' values first (BatchGet, in chunks of the server's
//     default --max-batch), so that the check does not need fresh keys.
//  2. One Accumulator over the first connection, flushing every
//     --flush-interval with a window of --window messages. --threads
//     threads call Add(key, 1) on uniformly drawn keys for --duration (no
//     warm-up: every Add counts), each keeping its own per-key count of the
//     Adds that returned OK.
//  3. Then Flush, and the read-back: each key's value must have moved by
//     the threads' counts summed, exactly. Any difference, any refused Add,
//     any refused or unknown message fails the run (exit 1).
//  4. It reports the Add calls per second (over --duration) and the
//     increments the daemon acknowledged per second (the acknowledged
//     messages' sizes, over --duration and the final Flush): the second is
//     at most the keys touched per flush interval, which is the point.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/accumulator.h"
#include "client/client.h"
#include "client/counterctl/bench_stream.h"
#include "client/counterctl/output.h"
#include "shared/limits.h"

namespace countersd::ctl {
namespace {

using Clock = BenchClock;

absl::StatusOr<std::vector<int64_t>> ReadValues(CounterClient& client,
                                                const std::vector<std::string>& keys) {
  std::vector<int64_t> values;
  values.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); i += kMaxBatchOps) {
    const size_t n = std::min(kMaxBatchOps, keys.size() - i);
    absl::StatusOr<std::vector<CounterEntry>> got =
        client.BatchGet(absl::MakeConstSpan(keys.data() + i, n));
    if (!got.ok()) return got.status();
    for (const CounterEntry& e : *got) values.push_back(e.value);
  }
  return values;
}

}  // namespace

int RunAccumulateLoad(const Invocation& inv, const BenchConfig& config,
                      const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                      const volatile std::sig_atomic_t* interrupted) {
  std::vector<std::string> keys;
  keys.reserve(config.keys);
  for (int64_t i = 0; i < config.keys; ++i) keys.push_back(absl::StrCat(config.key_prefix, i));
  ClientOptions client_options;
  client_options.timeout = config.timeout;
  client_options.bearer_token = config.bearer_token;
  CounterClient client(channels[0], client_options);
  absl::StatusOr<std::vector<int64_t>> before = ReadValues(client, keys);
  if (!before.ok()) return ReportError(inv, before.status());

  std::mutex error_mu;
  std::string first_error;
  uint64_t reported = 0;
  AccumulatorOptions options;
  options.client = client_options;
  options.flush_interval = config.flush_interval;
  options.window = static_cast<int>(config.window);
  options.close_timeout = config.timeout;
  options.on_error = [&](const AccumulatorError& e) {
    std::lock_guard lock(error_mu);
    ++reported;
    if (first_error.empty()) {
      first_error = absl::StrCat(AccumulatorError::KindName(e.kind), ": ", e.status.ToString(),
                                 " (", e.increments.size(), " increments)");
    }
  };
  auto acc = std::make_unique<Accumulator>(channels[0], options);

  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + absl::ToChronoNanoseconds(config.duration.value_or(absl::Seconds(10)));
  std::atomic<bool> stop{false};
  std::vector<std::vector<int64_t>> counts(config.threads);
  std::vector<std::thread> threads;
  uint64_t seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ 0x9E3779B97F4A7C15ULL;
  for (int64_t t = 0; t < config.threads; ++t) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    counts[t].assign(keys.size(), 0);
    threads.emplace_back([&, t, rng = seed | 1]() mutable {
      std::vector<int64_t>& mine = counts[t];
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 256; ++i) {
          rng ^= rng >> 12;
          rng ^= rng << 25;
          rng ^= rng >> 27;
          const size_t k = ((rng * 0x2545F4914F6CDD1DULL) >> 11) % keys.size();
          if (acc->Add(keys[k], 1).ok()) ++mine[k];
        }
      }
    });
  }
  const bool progress = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
  while (Clock::now() < end && !*interrupted) {
    std::this_thread::sleep_until(std::min(end, Clock::now() + std::chrono::seconds(1)));
    if (progress) {
      const AccumulatorStats s = acc->stats();
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      fputs(absl::StrFormat("\r\033[K%6.1fs  %s adds  %s increments acknowledged", t,
                            WithThousands(s.adds), WithThousands(s.acked_increments))
                .c_str(),
            stderr);
      fflush(stderr);
    }
  }
  stop.store(true, std::memory_order_relaxed);
  for (std::thread& t : threads) t.join();
  const Clock::time_point adds_end = Clock::now();
  if (progress) fputs("\r\033[K", stderr);
  const absl::Status flushed = acc->Flush(config.timeout);
  const Clock::time_point flush_end = Clock::now();
  const AccumulatorStats stats = acc->stats();
  acc.reset();  // nothing is left: the Flush sent it, or the failure is reported

  // The read-back.
  absl::StatusOr<std::vector<int64_t>> after = ReadValues(client, keys);
  if (!after.ok()) return ReportError(inv, after.status());
  uint64_t mismatched = 0, added = 0;
  std::string first_mismatch;
  for (size_t k = 0; k < keys.size(); ++k) {
    int64_t sum = 0;
    for (const std::vector<int64_t>& c : counts) sum += c[k];
    added += static_cast<uint64_t>(sum);
    if ((*after)[k] - (*before)[k] != sum) {
      if (first_mismatch.empty()) {
        first_mismatch = absl::StrCat(keys[k], " moved by ", (*after)[k] - (*before)[k],
                                      ", the threads added ", sum);
      }
      ++mismatched;
    }
  }

  const double add_seconds = std::chrono::duration<double>(adds_end - start).count();
  const double run_seconds = std::chrono::duration<double>(flush_end - start).count();
  const double adds_per_s = add_seconds > 0 ? stats.adds / add_seconds : 0.0;
  const double acked_per_s = run_seconds > 0 ? stats.acked_increments / run_seconds : 0.0;
  const bool exact = mismatched == 0 && flushed.ok();
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("rpc", "accumulate").Field("address", inv.address);
    j.Field("threads", config.threads).Field("keys", config.keys);
    j.Field("flush_interval_seconds", absl::ToDoubleSeconds(config.flush_interval));
    j.Field("window", config.window);
    j.Field("elapsed_seconds", add_seconds).Field("interrupted", *interrupted != 0);
    j.Field("adds", stats.adds).Field("failed_adds", stats.failed_adds());
    j.Field("adds_per_second", adds_per_s);
    j.Field("acked_messages", stats.acked_messages)
        .Field("acked_increments", stats.acked_increments);
    j.Field("acked_increments_per_second", acked_per_s);
    j.Field("refused_increments", stats.refused_increments);
    j.Field("unknown_increments", stats.unknown_increments);
    j.Field("reported_errors", reported);
    j.Field("verified", exact).Field("mismatched_keys", mismatched);
    if (!first_mismatch.empty()) j.Field("first_mismatch", first_mismatch);
    if (!flushed.ok()) j.Field("flush_error", flushed.ToString());
    if (!first_error.empty()) j.Field("first_error", first_error);
    j.EndObject();
    PrintData(j.str() + "\n");
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"rpc",
         absl::StrCat("accumulate (Accumulator::Add, flushed every ",
                      absl::FormatDuration(config.flush_interval), " over IncrementStream)")},
        {"target", absl::StrCat(inv.address, ", ", config.threads, " threads, ",
                                WithThousands(config.keys), " keys, window ", config.window)},
        {"measured", absl::StrFormat("%.2f s of Adds, then Flush (%.2f s in all)%s", add_seconds,
                                     run_seconds, *interrupted ? " (interrupted)" : "")},
        {"adds", absl::StrCat(WithThousands(stats.adds), " ok, ",
                              WithThousands(stats.failed_adds()), " refused")},
        {"add rate",
         absl::StrCat(WithThousands(static_cast<uint64_t>(adds_per_s)), " Add calls/s")},
        {"flushed",
         absl::StrCat(WithThousands(stats.acked_increments), " increments in ",
                      WithThousands(stats.acked_messages), " messages acknowledged, ",
                      WithThousands(static_cast<uint64_t>(acked_per_s)), " increments/s")},
        {"verified",
         exact ? absl::StrCat("exact: every key moved by its ", WithThousands(added), " adds' sum")
               : absl::StrCat("NO: ", mismatched, " keys differ",
                              first_mismatch.empty() ? "" : absl::StrCat("; ", first_mismatch))},
    };
    if (stats.unknown_increments + stats.refused_increments > 0) {
      rows.push_back({"lost", absl::StrCat(stats.refused_increments, " increments refused, ",
                                           stats.unknown_increments, " unknown")});
    }
    if (!flushed.ok()) rows.push_back({"flush", flushed.ToString()});
    if (!first_error.empty()) rows.push_back({"first error", first_error});
    PrintData(FormatColumns(rows));
  }
  if (!exact || reported > 0) {
    PrintMessage(
        inv,
        !flushed.ok() ? absl::StrCat("the final Flush failed: ", flushed.ToString())
        : mismatched > 0
            ? absl::StrCat(mismatched, " keys differ from the sums added; first: ", first_mismatch)
            : absl::StrCat(reported, " errors reported; first: ", first_error));
    return kExitError;
  }
  return kExitOk;
}

}  // namespace countersd::ctl
