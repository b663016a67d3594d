#include "shared/stripe_lock.h"

#include <errno.h>
#include <sched.h>

#include <cstdlib>

namespace countersd {
namespace {

bool TryLock(StripeLockShared* l, int32_t pid) {
  int32_t expected = 0;
  return l->owner.load(std::memory_order_relaxed) == 0 &&
         l->owner.compare_exchange_strong(expected, pid, std::memory_order_acquire,
                                          std::memory_order_relaxed);
}

void Wakeup(StripeLockShared* l) {
  int32_t w = l->waiters.load(std::memory_order_relaxed);
  while (w > 0) {
    if (l->waiters.compare_exchange_weak(w, w - 1, std::memory_order_acq_rel)) {
      sem_post(&l->sem);
      return;
    }
  }
}

}  // namespace

void StripeLockInit(StripeLockShared* l) {
  l->owner.store(0, std::memory_order_relaxed);
  l->waiters.store(0, std::memory_order_relaxed);
  if (sem_init(&l->sem, /*pshared=*/1, 0) != 0) std::abort();  // EINVAL only: a bug.
}

void StripeLock(StripeLockShared* l, int32_t pid) {
  for (;;) {
    if (TryLock(l, pid)) return;
    // Short spin: critical sections are tens of nanoseconds.
    for (int i = 0; i < 64; ++i) {
      __builtin_ia32_pause();
      if (TryLock(l, pid)) return;
    }
    l->waiters.fetch_add(1, std::memory_order_acq_rel);
    if (TryLock(l, pid)) {
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

void StripeUnlock(StripeLockShared* l, int32_t pid) {
  int32_t expected = pid;
  if (!l->owner.compare_exchange_strong(expected, 0, std::memory_order_release,
                                        std::memory_order_relaxed)) {
    std::abort();  // Unlocking a lock we do not hold: a broken invariant.
  }
  Wakeup(l);
}

bool StripeForceUnlock(StripeLockShared* l, int32_t dead_pid) {
  int32_t expected = dead_pid;
  if (!l->owner.compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    return false;
  }
  Wakeup(l);
  return true;
}

}  // namespace countersd
