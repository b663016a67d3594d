#include "shared/stripe_lock.h"

#include <errno.h>
#include <sched.h>

#include <atomic>
#include <cstdlib>

namespace countersd {
namespace {

// One step of a spin-wait: tells the CPU this is a spin loop, so it saves
// power and yields the core's other hardware thread to the holder.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);  // a compiler barrier only
#endif
}

}  // namespace

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
      CpuRelax();
      if (StripeTryLock(l, pid)) return;
    }
    // Counted as a waiter, re-check the owner before sleeping. This load
    // and Unlock's load of `waiters` are both seq_cst, after each side's
    // seq_cst write (our count, its release of `owner`): so at least one of
    // the two sees the other's write, and a release is never missed. (The
    // relaxed pre-check of StripeTryLock would be enough only on x86, where
    // the locked add orders it.)
    l->waiters.fetch_add(1, std::memory_order_seq_cst);
    int32_t free_owner = 0;
    if (l->owner.load(std::memory_order_seq_cst) == 0 &&
        l->owner.compare_exchange_strong(free_owner, pid, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
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
