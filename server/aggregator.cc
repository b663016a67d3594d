// The aggregator process.
//
// How it works:
//  1. At start it registers its stats slot and opens counters.snap for
//     writing (SnapshotWriter::Open); the next generation follows the newest
//     valid one in the file.
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
//  4. Failures (msync/fsync errors) are logged and published by the writer
//     (last_failed = 1); the waiting RPCs fail INTERNAL. The next attempt
//     is a fresh snapshot, never a retry of the same msync.
//  5. On stop it takes a final snapshot (serving any pending requests too)
//     and exits 0, or 1 if that final snapshot failed.
#include "server/aggregator.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <utility>

#include "absl/time/clock.h"
#include "shared/data_dir.h"
#include "shared/log.h"

namespace countersd {

Aggregator::Aggregator(CounterTable* table, std::unique_ptr<SnapshotWriter> snapshots)
    : table_(table), snapshots_(std::move(snapshots)) {}

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
  absl::Time next_periodic = absl::Now();  // the first snapshot is taken at once
  uint64_t attempts = 0;
  bool last_ok = false;  // the last snapshot attempt reached disk
  while (true) {
    uint32_t s = control.request_seq.load(std::memory_order_acquire);
    bool stopping = stop.load();
    absl::Time now = absl::Now();
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
    absl::StatusOr<SnapshotMetaInfo> meta = snapshots_->Write();
    ++attempts;
    last_ok = meta.ok();
    served = s;
    next_periodic = absl::Now() + interval;
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

int RunAggregatorProcess(CounterTable* table, const std::string& data_dir,
                         absl::Duration interval) {
  if (absl::Status s = table->RegisterProcess(getpid(), ProcessRole::kAggregator); !s.ok()) {
    Log(LogLevel::kError, "aggregator cannot register its stats slot", {{"error", s.ToString()}});
    return 1;
  }
  absl::StatusOr<std::unique_ptr<SnapshotWriter>> snapshots = SnapshotWriter::Open(table, data_dir);
  if (!snapshots.ok()) {
    Log(LogLevel::kError, "aggregator cannot open the snapshot file",
        {{"file", kSnapshotFile}, {"error", snapshots.status().ToString()}});
    return 1;
  }
  table->SetReady(true);
  Log(LogLevel::kInfo, "aggregator started",
      {{"snapshot_interval", absl::FormatDuration(interval)},
       {"generation", (*snapshots)->file_generation()}});
  return Aggregator(table, *std::move(snapshots)).Run(interval);
}

}  // namespace countersd
