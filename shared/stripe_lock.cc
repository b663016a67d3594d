#include "shared/stripe_lock.h"

#include <errno.h>
#include <sched.h>

#include <cstdlib>

namespace countersd {
void StripeLockInit(StripeLockShared* l) {
  l->owner.store(0, std::memory_order_relaxed);
  l->waiters.store(0, std::memory_order_relaxed);
  if (sem_init(&l->sem, /*pshared=*/1, 0) != 0) std::abort();  // EINVAL only: a bug.
}

void StripeWakeup(StripeLockShared* l) {
  int32_t w = l->waiters.load(std::memory_order_relaxed);
  while (w > 0) {
    if (l->waiters.compare_exchange_weak(w, w - 1, std::memory_order_acq_rel)) {
      sem_post(&l->sem);
      return;
    }
  }
}

void StripeLockSlow(StripeLockShared* l, int32_t pid) {
  for (;;) {
    if (StripeTryLock(l, pid)) return;
    // Short spin: critical sections are tens of nanoseconds.
    for (int i = 0; i < 64; ++i) {
      __builtin_ia32_pause();
      if (StripeTryLock(l, pid)) return;
    }
    l->waiters.fetch_add(1, std::memory_order_seq_cst);
    if (StripeTryLock(l, pid)) {
      // We were counted as a waiter but did not sleep: undo the count.
      int32_t w = l->waiters.load(std::memory_order_relaxed);
      while (w > 0 && !l->waiters.compare_exchange_weak(w, w - 1, std::memory_order_acq_rel)) {
      }
      return;
    }
    while (sem_wait(&l->sem) == -1 && errno == EINTR) {
    }
  }
}

bool StripeForceUnlock(StripeLockShared* l, int32_t dead_pid) {
  int32_t expected = dead_pid;
  if (!l->owner.compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    return false;
  }
  StripeWakeup(l);
  return true;
}

}  // namespace countersd
