// Per-process slots in the mapping (layout.h, ProcessSlot): how a handler
// or the aggregator claims one, marks it ready, stores its connection
// counts and beats its heartbeat into it, and how anyone reads them all;
// and which stripes a process holds. (A handler's calls are counted in the
// stats area, shared/stats_area.h, whose rows outlive a respawn.)
// A slot is claimed by CAS of its pid word from 0, written only by its
// claimer with relaxed atomics on its own cache line (so a store costs one
// uncontended write), and freed by the owner after the claimer died
// (crash_repair.cc) or at Open. The supervisor reads heartbeats and owner
// words to find children that stopped (server/child_liveness.cc).
//
// Connection counts: a handler's gate stores its counts into the slot
// (PublishConnections). When the owner frees a dead handler's slot it first
// moves the slot's totals into the header's RetiredConnections under that
// struct's seqlock (RetireConnectionsAndFree, called by RecoverDeadProcess), so
// GetStats' totals keep what a killed handler counted; a reader that sums
// the slots and the retired totals between the same even seq values counts
// every handler once.
#include <sched.h>
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
      ps->ready.store(0);
      ps->heartbeat_ns.store(0);
      // Already zero (RetireConnectionsAndFree, Open); the claimer's own stores.
      ps->connections_open.store(0);
      ps->connections_accepted.store(0);
      ps->connections_refused.store(0);
      ps->handshake_timeouts.store(0);
      my_slot_ = ps;
      return absl::OkStatus();
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("all ", kProcessSlots, " process slots of the map file are taken"));
}

void CounterTable::SetReady(bool ready) {
  if (my_slot_) my_slot_->ready.store(ready ? 1 : 0);
}

void CounterTable::PublishConnections(const ConnectionCounts& c) {
  if (!my_slot_) return;
  my_slot_->connections_accepted.store(c.accepted, std::memory_order_relaxed);
  my_slot_->connections_refused.store(c.refused, std::memory_order_relaxed);
  my_slot_->handshake_timeouts.store(c.handshake_timeouts, std::memory_order_relaxed);
  my_slot_->connections_open.store(c.open, std::memory_order_relaxed);
}

bool CounterTable::RetireConnectionsAndFree(ProcessSlot* ps, pid_t pid) {
  layout::RetiredConnections& r = header_->retired_connections;
  uint32_t seq = r.seq.load(std::memory_order_relaxed);
  if (seq & 1) ++seq;  // an owner killed mid-fold; Open zeroed nothing since
  r.seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  r.accepted.fetch_add(ps->connections_accepted.exchange(0), std::memory_order_relaxed);
  r.refused.fetch_add(ps->connections_refused.exchange(0), std::memory_order_relaxed);
  r.handshake_timeouts.fetch_add(ps->handshake_timeouts.exchange(0), std::memory_order_relaxed);
  ps->connections_open.store(0, std::memory_order_relaxed);
  int32_t expected = pid;
  bool freed = ps->pid.compare_exchange_strong(expected, 0);
  r.seq.store(seq + 2, std::memory_order_release);
  return freed;
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

std::vector<ProcessStats> CounterTable::ProcessStatsSnapshot(ConnectionCounts* retired) const {
  const layout::RetiredConnections& r = header_->retired_connections;
  std::vector<ProcessStats> out;
  // A fold takes microseconds; a seq that stays odd is an owner that died
  // mid-fold, taking the daemon with it: then the last read is returned.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint32_t s1 = r.seq.load(std::memory_order_acquire);
    if (s1 & 1) {
      if (attempt > 16) sched_yield();
      continue;
    }
    out.clear();
    if (retired != nullptr) {
      *retired = {.accepted = r.accepted.load(std::memory_order_relaxed),
                  .refused = r.refused.load(std::memory_order_relaxed),
                  .handshake_timeouts = r.handshake_timeouts.load(std::memory_order_relaxed)};
    }
    for (uint32_t i = 0; i < kProcessSlots; ++i) {
      const ProcessSlot* ps = process_slot(i);
      int32_t pid = ps->pid.load();
      if (pid == 0) continue;
      out.push_back(ProcessStats{
          pid, static_cast<ProcessRole>(ps->role.load()), ps->ready.load() != 0,
          ConnectionCounts{
              .accepted = ps->connections_accepted.load(std::memory_order_relaxed),
              .refused = ps->connections_refused.load(std::memory_order_relaxed),
              .handshake_timeouts = ps->handshake_timeouts.load(std::memory_order_relaxed),
              .open = ps->connections_open.load(std::memory_order_relaxed)}});
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (r.seq.load(std::memory_order_relaxed) == s1) break;
  }
  return out;
}

}  // namespace countersd
