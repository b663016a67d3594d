#include "shared/control.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

namespace countersd {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

void ResetAtOpen(SnapshotControl& c) {
  c.request_seq.store(0);
  c.done_seq.store(0);
  c.last_failed.store(0);
  c.failures.store(0);
  c.consecutive_failures.store(0);
  c.undurable_since.store(0);
}

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, absl::Duration timeout) {
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout != absl::InfiniteDuration()) {
    if (timeout < absl::ZeroDuration()) timeout = absl::ZeroDuration();
    ts = absl::ToTimespec(timeout);
    tsp = &ts;
  }
  // Not FUTEX_PRIVATE_FLAG: the word is in a MAP_SHARED file mapping.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, tsp, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace countersd
