// Per-process slots in the mapping (layout.h, ProcessSlot): how a handler
// or the aggregator claims one, counts its calls and beats its heartbeat
// into it, and how anyone reads them all; and which stripes a process holds.
// A slot is claimed by CAS of its pid word from 0, written only by its
// claimer with relaxed atomics on its own cache line (so counting a call
// costs one uncontended add), and freed by the owner after the claimer died
// (crash_repair.cc) or at Open. The supervisor reads heartbeats and owner
// words to find children that stopped (server/child_liveness.cc).
#include <time.h>

#include "absl/strings/str_cat.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::ProcessSlot;

absl::Status CounterTable::RegisterProcess(pid_t pid, ProcessRole role) {
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    ProcessSlot* ps = process_slot(i);
    int32_t expected = 0;
    if (ps->pid.load() == 0 && ps->pid.compare_exchange_strong(expected, pid)) {
      ps->role.store(static_cast<uint32_t>(role));
      ps->calls.store(0);
      ps->errors.store(0);
      ps->ready.store(0);
      ps->heartbeat_ns.store(0);
      my_slot_ = ps;
      return absl::OkStatus();
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("all ", kProcessSlots, " process slots of the map file are taken"));
}

void CounterTable::CountCall(bool error) {
  if (!my_slot_) return;
  my_slot_->calls.fetch_add(1, std::memory_order_relaxed);
  if (error) my_slot_->errors.fetch_add(1, std::memory_order_relaxed);
}

void CounterTable::SetReady(bool ready) {
  if (my_slot_) my_slot_->ready.store(ready ? 1 : 0);
}

// CLOCK_MONOTONIC_COARSE: the same clock as CLOCK_MONOTONIC at the
// resolution of the scheduler tick (1-4 ms), read from the vDSO without
// touching the hardware counter. The serving loop reads it at every turn:
// on the 2-core VM it costs 33 ns against 204 ns for CLOCK_MONOTONIC, and
// the limits it is judged against are 100 ms and more.
int64_t CounterTable::HeartbeatNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void CounterTable::Heartbeat(int64_t now) {
  if (my_slot_) my_slot_->heartbeat_ns.store(now, std::memory_order_relaxed);
}

int64_t CounterTable::LastHeartbeat(pid_t pid) const {
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    const ProcessSlot* ps = process_slot(i);
    if (ps->pid.load(std::memory_order_relaxed) == pid) {
      return ps->heartbeat_ns.load(std::memory_order_relaxed);
    }
  }
  return 0;
}

std::vector<uint32_t> CounterTable::StripesHeldBy(pid_t pid) const {
  std::vector<uint32_t> out;
  for (uint32_t r = 0; r < header_->regions; ++r) {
    if (region(r)->lock.owner.load(std::memory_order_relaxed) == pid) out.push_back(r);
  }
  return out;
}

std::vector<ProcessStats> CounterTable::ProcessStatsSnapshot() const {
  std::vector<ProcessStats> out;
  for (uint32_t i = 0; i < kProcessSlots; ++i) {
    const ProcessSlot* ps = process_slot(i);
    int32_t pid = ps->pid.load();
    if (pid == 0) continue;
    out.push_back(ProcessStats{pid, static_cast<ProcessRole>(ps->role.load()), ps->calls.load(),
                               ps->errors.load(), ps->ready.load() != 0});
  }
  return out;
}

}  // namespace countersd
