// LowPriorityCalls: one thread of a handler, at a lower CPU priority than its
// serving thread, that runs the calls the serving loop hands it (List), one
// after another. See low_priority_calls.cc for why, and how it is bounded.
#ifndef COUNTERSD_SERVER_LOW_PRIORITY_CALLS_H_
#define COUNTERSD_SERVER_LOW_PRIORITY_CALLS_H_

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/functional/any_invocable.h"

namespace countersd {

class LowPriorityCalls {
 public:
  // The thread's nice value: the lowest (setpriority on its thread id).
  // The kernel's fair scheduler weighs a nice-19 thread 15 against 1024 for
  // one at nice 0, so when it and the serving thread (or the clients'
  // threads) want the same CPU it gets ~1.5% of it; an idle CPU it gets
  // whole.
  static constexpr int kNice = 19;

  // Starts the thread at `nice`. If its priority cannot be changed (a
  // seccomp profile, say) it logs a warning and runs at the process's.
  explicit LowPriorityCalls(int nice = kNice);
  // Stop()s.
  ~LowPriorityCalls();
  LowPriorityCalls(const LowPriorityCalls&) = delete;
  LowPriorityCalls& operator=(const LowPriorityCalls&) = delete;

  // Runs `call` on the thread, after every call submitted before it. Once
  // Stop() has begun, runs it on the calling thread instead, before
  // returning (so a call is never dropped). Any thread. The caller bounds
  // how many it submits (the serving loop: the method's call objects).
  void Submit(absl::AnyInvocable<void() &&> call);

  // Runs what is still queued, then joins the thread. Idempotent; any thread
  // but this one's own.
  void Stop();

  // The thread's nice value as getpriority reads it once set (-100 if it
  // could not be read), for tests.
  int nice() const;

 private:
  void Run(int nice);

  // std::mutex, not absl::Mutex: ThreadSanitizer sees pthread's locks (it
  // intercepts them) but not those of Debian's uninstrumented Abseil, and the
  // calls handed over through this queue are what it must check.
  mutable std::mutex mu_;
  std::condition_variable wake_;   // the queue is not empty, or stopping_
  std::condition_variable ready_;  // started_
  std::deque<absl::AnyInvocable<void() &&>> queue_;  // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_
  bool started_ = false;                             // guarded by mu_
  int nice_ = 0;                                     // guarded by mu_
  std::thread thread_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_LOW_PRIORITY_CALLS_H_
