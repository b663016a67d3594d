// StripeLock: a process-shared lock whose holder can be identified and
// released after the holder dies. Modelled on nginx's ngx_shmtx:
//
//   - `owner` is the lock. 0 means free; otherwise it is the pid of the
//     holding process. Acquire is CAS(0 -> pid), release is CAS(pid -> 0).
//     Because the lock *is* the owner word, there is no instant at which a
//     process holds the lock without its pid being recorded.
//   - `sem` is a POSIX process-shared semaphore used only to sleep: a waiter
//     that has spun enough bumps `waiters`, re-checks `owner`, and sem_waits.
//     Unlock posts the semaphore when `waiters` is positive.
//   - ForceUnlock(pid) releases a lock held by a dead pid (the supervisor
//     calls it after reaping the pid) and wakes a waiter. A waiter that died
//     while counted in `waiters` only causes one spurious wake-up later.
//   - A holder that is alive but stopped (SIGSTOP, a debugger) releases
//     nothing, and a waiter sleeps until it does. The supervisor finds such
//     a holder from the owner word and the process's state, kills it and
//     then force-unlocks as for any dead pid (server/child_liveness.cc), so a
//     waiter waits at most --lock-hold-limit and a little more. A waiter
//     never outlives the supervisor either: its children get SIGKILL when it
//     dies (PR_SET_PDEATHSIG, server/supervisor.cc).
//
// Threads of one process share a pid, so the lock is not re-entrant and
// identifies the holding *process*, which is what crash recovery needs.
#ifndef COUNTERSD_SHARED_STRIPE_LOCK_H_
#define COUNTERSD_SHARED_STRIPE_LOCK_H_

#include <semaphore.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>

namespace countersd {

// Lives in the mapping. Plain data; all fields are written only through the
// functions below. Invariants:
//  1. owner != 0 <=> a process holds the lock, and owner is its pid. Set by
//     the acquirer (CAS 0 -> pid), cleared by the holder (CAS pid -> 0) or
//     by the table's owner after reaping the dead holder (ForceUnlock).
//  2. waiters >= the number of processes asleep in sem_wait (a dead sleeper
//     leaves it one too high: one spurious wake-up later). Incremented by
//     waiters, decremented by whoever posts `sem`.
//  3. sem is meaningless after a restart: StripeLockInit re-creates it at
//     every Open, when no process uses the lock.
struct StripeLockShared {
  std::atomic<int32_t> owner;    // 0 or holder pid.
  std::atomic<int32_t> waiters;  // sleepers on `sem`, approximately.
  sem_t sem;                     // pshared, initial value 0.
};
static_assert(std::atomic<int32_t>::is_always_lock_free);

// Initialises a lock to free. REQUIRES: no process uses the lock.
void StripeLockInit(StripeLockShared* l);
// Blocks until this process (`pid`) holds the lock.
inline void StripeLock(StripeLockShared* l, int32_t pid);
// REQUIRES: this process holds the lock.
inline void StripeUnlock(StripeLockShared* l, int32_t pid);
// Releases the lock if `dead_pid` holds it. Returns true if it did.
bool StripeForceUnlock(StripeLockShared* l, int32_t dead_pid);

// The uncontended paths are inline (they are most of an increment's cost);
// spinning, sleeping and waking are out of line.
void StripeLockSlow(StripeLockShared* l, int32_t pid);
void StripeWakeup(StripeLockShared* l);

inline bool StripeTryLock(StripeLockShared* l, int32_t pid) {
  int32_t expected = 0;
  return l->owner.load(std::memory_order_relaxed) == 0 &&
         l->owner.compare_exchange_strong(expected, pid, std::memory_order_acquire,
                                          std::memory_order_relaxed);
}

inline void StripeLock(StripeLockShared* l, int32_t pid) {
  if (!StripeTryLock(l, pid)) StripeLockSlow(l, pid);
}

inline void StripeUnlock(StripeLockShared* l, int32_t pid) {
  int32_t expected = pid;
  if (!l->owner.compare_exchange_strong(expected, 0, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
    __builtin_trap();  // unlocking a lock this process does not hold: a broken invariant
  }
  // The CAS and this load are seq_cst, and so are a waiter's count and its
  // re-check of `owner` (StripeLockSlow): a waiter that counted itself
  // before this load is seen, and one that counts itself after it re-checks
  // `owner` and finds it free.
  if (l->waiters.load(std::memory_order_seq_cst) > 0) StripeWakeup(l);
}

}  // namespace countersd

#endif  // COUNTERSD_SHARED_STRIPE_LOCK_H_
