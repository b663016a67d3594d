// The aggregator process.
//
// How it works:
//  1. At start it registers its stats slot and, with --metrics-listen,
//     starts GET /metrics on the socket the supervisor bound
//     (metrics_server.h: libmicrohttpd's own thread renders each scrape,
//     metrics_page.h). Each snapshot attempt first
//     opens counters.snap for writing if it is not open yet
//     (SnapshotWriter::Open: made, set aside and remade, or grown to the
//     table's capacity; the next generation follows the newest valid one).
//     An open that fails is a failed attempt like any other (step 4), and
//     the next attempt tries again: a full disk or a bad file never makes
//     the process exit and crash-loop.
//  2. A signal thread sigwait()s for SIGTERM/SIGINT. On one it sets `stop`
//     and bumps request_seq (so a FutexWait on it returns at once, even if
//     the main loop is just about to sleep) and wakes it.
//  3. Main loop: s = request_seq. If nobody asked for a snapshot since the
//     last one (s == the last seq served) and the interval has not passed,
//     sleep on request_seq until it changes or the interval passes.
//     A periodic snapshot of an unchanged table is skipped (unless the last
//     attempt failed). Otherwise SnapshotWriter::Write takes a point-in-time
//     copy, writes it durably and publishes the result in the
//     SnapshotControl words (snapshot_writer.cc). Then the loop sets
//     done_seq = s and wakes every waiter on done_seq: each Snapshot RPC
//     whose request number is <= s is served by a snapshot that started
//     after its request.
//  4. Failures (msync/fsync errors, or no writable file) are logged and
//     published (SnapshotWriter::PublishFailure: last_failed = 1, the
//     failure counts); the waiting RPCs fail INTERNAL. The next attempt,
//     one interval later, is a fresh snapshot, never a retry of the same
//     msync: so a failing writer logs an error every interval.
//  5. On stop it takes a final snapshot (serving any pending requests too)
//     and exits 0, or 1 if that final snapshot failed.
#include "server/aggregator.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/metrics_page.h"
#include "server/metrics_server.h"
#include "shared/data_dir.h"
#include "shared/log.h"
#include "shared/monotonic_time.h"

namespace countersd {

Aggregator::Aggregator(CounterTable* table, std::string data_dir, Sys* sys)
    : table_(table), data_dir_(std::move(data_dir)), sys_(sys) {}

absl::StatusOr<SnapshotMetaInfo> Aggregator::Attempt() {
  if (writer_ == nullptr) {
    absl::StatusOr<std::unique_ptr<SnapshotWriter>> opened =
        SnapshotWriter::Open(table_, data_dir_, sys_);
    if (!opened.ok()) {
      absl::Status error(opened.status().code(),
                         absl::StrCat("cannot open ", kSnapshotFile, " for writing: ",
                                      opened.status().message()));
      SnapshotWriter::PublishFailure(table_, error);
      return error;
    }
    writer_ = *std::move(opened);
    Log(LogLevel::kInfo, "snapshot file open",
        {{"file", kSnapshotFile}, {"generation", writer_->file_generation()}});
  }
  return writer_->Write();
}

int Aggregator::Run(absl::Duration interval) {
  SnapshotControl& control = table_->snapshot_control();
  std::atomic<bool> stop{false};

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stop.store(true);
    control.request_seq.fetch_add(1);  // changes the word: no lost wake-up
    FutexWakeAll(&control.request_seq);
  });
  signal_thread.detach();  // the process exits from Run's caller

  uint32_t served = control.request_seq.load();
  absl::Time next_periodic = MonotonicNow();  // the first snapshot is taken at once
  uint64_t attempts = 0;
  bool last_ok = false;  // the last snapshot attempt reached disk
  while (true) {
    uint32_t s = control.request_seq.load(std::memory_order_acquire);
    bool stopping = stop.load();
    absl::Time now = MonotonicNow();
    if (!stopping && s == served && now < next_periodic) {
      FutexWait(&control.request_seq, s, next_periodic - now);
      continue;
    }
    bool first = attempts == 0;
    bool requested = s != served;
    // A periodic snapshot of an unchanged table would only rewrite the same
    // counters (for a big table, a lot of I/O every interval): skip it,
    // unless the last attempt failed and its copy never reached disk.
    if (!requested && !stopping && !first && last_ok && !table_->ChangedSinceLastSnapshot()) {
      next_periodic = now + interval;
      continue;
    }
    absl::StatusOr<SnapshotMetaInfo> meta = Attempt();
    ++attempts;
    last_ok = meta.ok();
    served = s;
    next_periodic = MonotonicNow() + interval;
    control.done_seq.store(s, std::memory_order_release);
    FutexWakeAll(&control.done_seq);
    if (meta.ok()) {
      LogLevel level = (first || stopping) ? LogLevel::kInfo : LogLevel::kDebug;
      Log(level, stopping ? "final snapshot written" : "snapshot written",
          {{"generation", meta->generation},
           {"counters", meta->counters},
           {"bytes", meta->bytes},
           {"micros", control.micros.load(std::memory_order_relaxed)},
           {"max_pause_ns", control.max_pause_ns.load(std::memory_order_relaxed)},
           {"requested", requested ? "yes" : "no"}});
    }
    if (stopping) {
      if (!meta.ok()) {
        Log(LogLevel::kError, "final snapshot failed", {{"error", meta.status().ToString()}});
        return 1;
      }
      return 0;
    }
  }
}

int RunAggregatorProcess(CounterTable* table, const std::string& data_dir, absl::Duration interval,
                         const AggregatorMetrics& metrics) {
  if (absl::Status s = table->RegisterProcess(getpid(), ProcessRole::kAggregator); !s.ok()) {
    Log(LogLevel::kError, "aggregator cannot register its stats slot", {{"error", s.ToString()}});
    return 1;
  }
  std::unique_ptr<MetricsServer> metrics_server;
  if (metrics.listen_fd >= 0) {
    MetricsSources sources{.table = table,
                           .stats = metrics.stats,
                           .export_prefixes = metrics.config.export_prefixes,
                           .export_max = metrics.config.export_max,
                           .supervisor_pid = getppid()};
    absl::StatusOr<std::unique_ptr<MetricsServer>> server =
        MetricsServer::Start(metrics.listen_fd, [sources] { return RenderMetrics(sources); });
    if (!server.ok()) {
      Log(LogLevel::kError, "aggregator cannot serve /metrics",
          {{"error", server.status().ToString()}});
      return 1;
    }
    metrics_server = *std::move(server);
    Log(LogLevel::kInfo, absl::StrCat("metrics listening on ", metrics.address));
  }
  table->SetReady(true);
  Log(LogLevel::kInfo, "aggregator started",
      {{"snapshot_interval", absl::FormatDuration(interval)}});
  return Aggregator(table, data_dir).Run(interval);
}

}  // namespace countersd
