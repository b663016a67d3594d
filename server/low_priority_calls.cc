// Why List runs on a thread of its own, at a lower priority
// ========================================================
//
// A handler serves every unary RPC from one completion queue on one thread
// (unary_call_loop.cc), which answers each call inline. A List page costs
// tens of microseconds (a merge over the regions and a read of each slot of
// the page, sorted_key_index.cc), an Increment about one; so a few clients
// listing a big table in a closed loop took most turns of the serving thread
// and left other clients' increments at 0.23x their rate (issue 11, fault 6;
// tests/e2e/list_fairness_test.cc). Here the serving thread only receives
// a List call and hands it over; this thread decodes the request, runs the
// page (CounterServiceImpl::HandleCall of DoList) and serializes the reply,
// then sets an alarm on the serving queue, by which the serving thread gets
// the call back and Finishes it (unary_call_loop.cc, 1b.), as for any other
// call.
//
// How the share is bounded:
//  1. The thread runs at nice 19 (setpriority(PRIO_PROCESS, tid): on Linux
//     a thread's own nice value). When it and the serving thread (or the
//     clients' threads) want the same CPU, CFS gives each a share by
//     weight, 15 against 1024, so List takes ~1.5% of a contended CPU and
//     still never starves; on an idle CPU it runs as fast as ever. Not
//     SCHED_IDLE, whose weight of 3 comes with no such floor in practice,
//     and makes any lock the thread holds when preempted (the queue's, for
//     the moment it takes to post the alarm) a long wait for whoever needs
//     it next. Nice 10 (weight 110) was measured too: the fairness test's
//     ratio fell to 0.46 on a machine loaded by three test jobs, where nice
//     19 kept 0.74 to 1.2.
//  2. The serving thread's own cost per List call is that of receiving,
//     Finishing (writing the bytes already serialized) and recycling one
//     call, and List calls are bounded: the List method has at
//     most kCold.max_calls call objects (unary_call_loop.cc), so at most that
//     many wait here; beyond them gRPC holds the streams (MAX_CONCURRENT_
//     STREAMS per connection, the ResourceQuota in bytes), as for any method
//     at its bound. Clients listing faster than this thread answers wait;
//     clients of every other method do not.
//  3. This thread never polls gRPC's completion queue. gRPC's epoll poller
//     is shared by every thread that waits on any completion queue of the
//     process, and the thread that happens to be the poller reads and parses
//     the bytes of every connection: a low-priority poller would read the
//     increments' bytes too, late on a busy machine, and each increment would
//     cross two threads. So List does not get a completion queue of its own
//     (a second queue polled by this thread would do exactly that); the
//     calls come in on the serving queue and only their handling comes here.
//     Nor does it Finish them: it stays off the connections' locks, and the
//     hand-over both ways is a lock or an atomic of ours (this queue's mutex;
//     the call's release/acquire flag back), which ThreadSanitizer checks;
//     gRPC's queue orders them too, but in code TSan does not see.
// The heartbeat stays the serving loop's (a List stuck here does not stop
// increments, and is not what the supervisor's liveness check is about).
//
// Shutdown (handler_process.cc): Stop() runs after grpc::Server::Shutdown
// has returned (every call finished or cancelled, the serving loop still
// polling) and before the serving loop shuts its queue down, so every alarm
// set here fires on a live queue; a call submitted after Stop() began runs
// on the submitter's thread.
#include "server/low_priority_calls.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "shared/log.h"

namespace countersd {

LowPriorityCalls::LowPriorityCalls(int nice) {
  thread_ = std::thread([this, nice] { Run(nice); });
  std::unique_lock<std::mutex> lock(mu_);
  ready_.wait(lock, [this] { return started_; });
}

LowPriorityCalls::~LowPriorityCalls() { Stop(); }

int LowPriorityCalls::nice() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nice_;
}

void LowPriorityCalls::Submit(absl::AnyInvocable<void() &&> call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(call));
      wake_.notify_one();
      return;
    }
  }
  std::move(call)();
}

void LowPriorityCalls::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void LowPriorityCalls::Run(int nice) {
  const pid_t tid = gettid();
  if (setpriority(PRIO_PROCESS, tid, nice) != 0) {
    Log(LogLevel::kWarning, "cannot lower the List thread's priority; it competes as an equal",
        {{"nice", nice}, {"error", std::strerror(errno)}});
  }
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  {
    std::lock_guard<std::mutex> lock(mu_);
    nice_ = errno == 0 ? now : -100;
    started_ = true;
    ready_.notify_one();
  }
  while (true) {
    absl::AnyInvocable<void() &&> call;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and nothing left
      call = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(call)();
  }
}

}  // namespace countersd
