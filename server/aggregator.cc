// The aggregator: durable snapshots of the shared table.
//
// How it works:
//  1. At start it registers its stats slot and opens counters.snap for
//     writing; the next generation follows the newest valid one in the file.
//  2. A signal thread sigwait()s for SIGTERM/SIGINT. On one it sets `stop_`
//     and bumps request_seq (so a FutexWait on it returns at once, even if
//     the main loop is just about to sleep) and wakes it.
//  3. Main loop: s = request_seq. If nobody asked for a snapshot since the
//     last one (s == the last seq served) and the interval has not passed,
//     sleep on request_seq until it changes or the interval passes.
//     Otherwise take a snapshot: SnapshotForEach gives a point-in-time copy
//     that never includes half of a batch; its records go into one reused
//     buffer, and SnapshotFile::Write copies them into the inactive half,
//     msyncs it, then writes and msyncs the meta page (see
//     shared/snapshot_file.h). Then it publishes the result in the
//     SnapshotControl words, sets done_seq = s and wakes every waiter on
//     done_seq: each Snapshot RPC whose request number is <= s is served by
//     a snapshot that started after its request.
//  4. Failures (msync/fsync errors) are logged at error level with the
//     syscall and errno, counted, and published as last_failed = 1; the
//     waiting RPCs fail INTERNAL. The next attempt is a fresh snapshot,
//     never a retry of the same msync.
//  5. On stop it takes a final snapshot (serving any pending requests too)
//     and exits 0, or 1 if that final snapshot failed.
#include "server/aggregator.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "shared/data_dir.h"
#include "shared/log.h"
#include "shared/status_macros.h"

namespace countersd {

absl::StatusOr<std::unique_ptr<Aggregator>> Aggregator::Open(CounterTable* table,
                                                             const std::string& data_dir) {
  std::unique_ptr<Aggregator> a(new Aggregator());
  a->table_ = table;
  ASSIGN_OR_RETURN(a->file_, SnapshotFile::OpenForWrite(absl::StrCat(data_dir, "/", kSnapshotFile),
                                                        table->capacity()));
  return a;
}

absl::StatusOr<SnapshotMetaInfo> Aggregator::TakeSnapshot() {
  SnapshotControl& control = table_->snapshot_control();
  absl::Time start = absl::Now();
  buffer_.clear();
  uint64_t count = 0;
  uint64_t max_pause_ns =
      table_->SnapshotForEach([this, &count](std::string_view key, int64_t value) {
        AppendSnapshotRecord(&buffer_, key, value);
        ++count;
      });
  absl::StatusOr<SnapshotMetaInfo> meta = file_->Write(buffer_, count, table_->capacity());
  uint64_t micros = static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - start));
  ++taken_;
  if (!meta.ok()) {
    control.failures.fetch_add(1, std::memory_order_relaxed);
    control.last_failed.store(1, std::memory_order_release);
    Log(LogLevel::kError,
        "SNAPSHOT FAILED: it did not reach disk; the previous snapshot stays the newest valid one",
        {{"error", meta.status().ToString()},
         {"counters", count},
         {"bytes", static_cast<uint64_t>(buffer_.size())},
         {"failures", control.failures.load(std::memory_order_relaxed)}});
    return meta.status();
  }
  control.counters.store(meta->counters, std::memory_order_relaxed);
  control.bytes.store(meta->bytes, std::memory_order_relaxed);
  control.micros.store(micros, std::memory_order_relaxed);
  control.max_pause_ns.store(max_pause_ns, std::memory_order_relaxed);
  control.unix_ns.store(meta->unix_ns, std::memory_order_relaxed);
  control.last_failed.store(0, std::memory_order_relaxed);
  control.generation.store(meta->generation, std::memory_order_release);
  return meta;
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
  absl::Time next_periodic = absl::Now();  // the first snapshot is taken at once
  while (true) {
    uint32_t s = control.request_seq.load(std::memory_order_acquire);
    bool stopping = stop.load();
    absl::Time now = absl::Now();
    if (!stopping && s == served && now < next_periodic) {
      FutexWait(&control.request_seq, s, next_periodic - now);
      continue;
    }
    bool first = taken_ == 0;
    bool requested = s != served;
    // A periodic snapshot of an unchanged table would only rewrite the same
    // counters (for a big table, a lot of I/O every interval): skip it,
    // unless the last attempt failed and its copy never reached disk.
    if (!requested && !stopping && !first && last_ok_ && !table_->ChangedSinceLastSnapshot()) {
      next_periodic = now + interval;
      continue;
    }
    absl::StatusOr<SnapshotMetaInfo> meta = TakeSnapshot();
    last_ok_ = meta.ok();
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
  absl::StatusOr<std::unique_ptr<Aggregator>> aggregator = Aggregator::Open(table, data_dir);
  if (!aggregator.ok()) {
    Log(LogLevel::kError, "aggregator cannot open the snapshot file",
        {{"file", kSnapshotFile}, {"error", aggregator.status().ToString()}});
    return 1;
  }
  table->SetReady(true);
  Log(LogLevel::kInfo, "aggregator started",
      {{"snapshot_interval", absl::FormatDuration(interval)},
       {"generation", (*aggregator)->file_generation()}});
  return (*aggregator)->Run(interval);
}

}  // namespace countersd
