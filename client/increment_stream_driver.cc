// IncrementStream's driver thread (increment_stream.h, "Breaks and
// reconnection"): it waits for a READY channel, opens a call and, while it
// lasts, watches the oldest answer's deadline; after a call that did not
// work it backs off. With exactly_once it also writes what the last stream
// left unanswered first on the next, and expires messages between streams.
#include <algorithm>
#include <memory>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "client/increment_stream.h"
#include "client/increment_stream_call.h"
#include "proto/grpc_deadline.h"

namespace countersd {

namespace v1 = ::counters::v1;

namespace {

const char* ChannelStateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "?";
}

// How long the driver waits on the channel's state at a time, so that it
// notices Close while the daemon cannot be reached.
constexpr absl::Duration kStateWaitSlice = absl::Milliseconds(250);

}  // namespace

void IncrementStream::Drive() {
  absl::Duration backoff = options_.client.initial_backoff;
  absl::BitGen rng;
  std::unique_lock lock(mu_);
  std::deque<StreamResult> expired;  // exactly_once: messages past their deadline between streams
  while (!stop_) {
    if (session_ != nullptr) {
      ExpireLocked(&expired);
      DeliverAll(lock, &expired);
      if (stop_) break;
    }
    // 1. A READY channel: gRPC (re)connects it with its own back-off.
    lock.unlock();
    grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY) {
      lock.lock();
      if (stop_) break;
      if (session_ != nullptr) {
        ExpireLocked(&expired);
        DeliverAll(lock, &expired);
        if (stop_) break;
      }
      last_error_ = absl::UnavailableError(absl::StrCat(
          "the channel to the daemon is not connected (", ChannelStateName(state), ")"));
      lock.unlock();
      channel_->WaitForStateChange(state, GrpcDeadlineAfter(kStateWaitSlice));
      state = channel_->GetState(/*try_to_connect=*/true);
    }
    if (state != GRPC_CHANNEL_READY) break;  // stop_, with the lock held
    lock.lock();
    if (stop_) break;

    // 2. A call, open for Sends.
    call_ = std::make_unique<Call>(this);
    Call* const call = call_.get();
    ++stats_.streams;
    lock.unlock();
    call->Begin();  // bound and started before any Send may write on it
    lock.lock();
    // The hold keeps it alive, but it may have failed already.
    v1::IncrementStreamRequest* resend = nullptr;
    if (!call->hold_released && call->error.ok()) {
      open_ = true;
      // exactly_once: what the last stream left unanswered goes first.
      if (!write_queue_.empty() && !writing_) {
        writing_ = true;
        resend = &write_queue_.front();
        InFlight& m = in_flight_[resend->sequence() - in_flight_.front().sequence];
        m.written = true;
        m.sent = Clock::now();
      }
      cv_.notify_all();
    }
    if (resend != nullptr) {
      lock.unlock();
      call->StartWrite(resend);  // writing_ keeps the hold
      lock.lock();
    }

    // 3. Until it ends: the oldest answer's deadline, and after Close the
    //    server's end of the stream.
    const auto timeout = absl::ToChronoNanoseconds(options_.client.timeout);
    while (!call->finished || call->users > 0) {
      const bool watch_answer = !in_flight_.empty();
      if (call->finished || !call->error.ok() || (!watch_answer && !stop_)) {
        cv_.wait(lock);
        continue;
      }
      const Clock::time_point due =
          watch_answer ? in_flight_.front().sent + timeout : stopped_at_ + timeout;
      if (Clock::now() < due) {
        cv_.wait_until(lock, due);
        continue;
      }
      call->error = absl::DeadlineExceededError(
          watch_answer
              ? absl::StrCat("IncrementStream: no answer to sequence ", in_flight_.front().sequence,
                             " within ", absl::FormatDuration(options_.client.timeout),
                             "; the stream was cancelled")
              : absl::StrCat("IncrementStream: the server did not end the stream within ",
                             absl::FormatDuration(options_.client.timeout), " of its close"));
      const bool release = call->EndWritesLocked();
      lock.unlock();
      call->context.TryCancel();
      if (release) call->RemoveHold();
      lock.lock();
    }
    const bool worked =
        call->answered_any || SinceSteady(call->started) >= options_.client.max_backoff;
    std::unique_ptr<Call> ended = std::move(call_);
    cv_.notify_all();
    lock.unlock();
    ended.reset();
    lock.lock();

    // 4. Back off unless the stream worked for a while.
    if (worked) {
      backoff = options_.client.initial_backoff;
      continue;
    }
    const absl::Duration b = std::min(backoff, options_.client.max_backoff);
    const absl::Duration wait =
        b / 2 + absl::Nanoseconds(absl::Uniform<int64_t>(
                    rng, 0, std::max<int64_t>(1, absl::ToInt64Nanoseconds(b / 2))));
    cv_.wait_for(lock, absl::ToChronoNanoseconds(wait), [&] { return stop_; });
    backoff = backoff * 2;
  }
  // exactly_once: what no stream was left to answer.
  CollectUnresolvedLocked(last_error_, false, &expired);
  DeliverAll(lock, &expired);
  cv_.notify_all();
}

}  // namespace countersd
