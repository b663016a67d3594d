// IncrementStream; how it works is at the top of increment_stream.h.
#include "client/increment_stream.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "proto/grpc_deadline.h"
#include "proto/status_conversion.h"

namespace countersd {

namespace v1 = ::counters::v1;

const char* StreamOutcomeName(StreamOutcome outcome) {
  switch (outcome) {
    case StreamOutcome::kAnswered:
      return "answered";
    case StreamOutcome::kUnknown:
      return "unknown";
    case StreamOutcome::kNotSent:
      return "not sent";
  }
  return "?";
}

namespace {

absl::Duration Since(std::chrono::steady_clock::time_point t) {
  return absl::FromChrono(std::chrono::steady_clock::now() - t);
}

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

// One IncrementStream call. Every field below `context` is guarded by the
// owner's mu_; the reactions never call gRPC with it held.
class IncrementStream::Call final
    : public grpc::ClientBidiReactor<v1::IncrementStreamRequest, v1::IncrementStreamResponse> {
 public:
  explicit Call(IncrementStream* owner) : owner_(owner) {
    if (!owner->authorization_.empty()) context.AddMetadata("authorization", owner->authorization_);
  }

  // Binds and starts the call. The hold lasts until the stream can take no
  // more writes (EndWritesLocked).
  void Begin() {
    owner_->stub_->async()->IncrementStream(&context, this);
    AddHold();
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  // Under mu_: ends writes on this call (no new write will start) and says
  // whether the caller must now RemoveHold (outside the lock).
  bool EndWritesLocked() {
    if (owner_->open_) {
      owner_->open_ = false;
      if (!owner_->closing_) owner_->broken_since_ = Clock::now();
    }
    if (hold_released || owner_->writing_) return false;
    hold_released = true;
    return true;
  }

  grpc::ClientContext context;
  // Guarded by the owner's mu_:
  absl::Status error;  // our own reason to end the call, if any
  bool hold_released = false;
  bool answered_any = false;
  bool finished = false;  // OnDone made its last touch of this object
  int users = 0;          // threads using this object outside mu_
  Clock::time_point started = Clock::now();

 private:
  IncrementStream* const owner_;
  v1::IncrementStreamResponse response_;
};

void IncrementStream::Call::OnReadDone(bool ok) {
  IncrementStream* const s = owner_;
  std::unique_lock lock(s->mu_);
  if (!ok) {  // the stream is over
    const bool release = EndWritesLocked();
    lock.unlock();
    if (release) RemoveHold();
    return;
  }
  // The answer must be the oldest unresolved message's.
  std::string violation;
  if (s->in_flight_.empty() || !s->in_flight_.front().written) {
    violation = absl::StrCat("an answer for sequence ", response_.sequence(),
                             " when no message was waiting for one");
  } else if (response_.sequence() != s->in_flight_.front().sequence) {
    violation = absl::StrCat("an answer for sequence ", response_.sequence(), " where sequence ",
                             s->in_flight_.front().sequence, " was due");
  } else if (response_.code() == 0 && response_.values_size() != s->in_flight_.front().increments) {
    violation =
        absl::StrCat("sequence ", response_.sequence(), " answered with ", response_.values_size(),
                     " values for ", s->in_flight_.front().increments, " increments");
  }
  if (!violation.empty()) {
    error = absl::InternalError(absl::StrCat("IncrementStream: the server sent ", violation));
    const bool release = EndWritesLocked();
    ++users;
    lock.unlock();
    context.TryCancel();  // no further read: the stream ends
    if (release) RemoveHold();
    lock.lock();
    --users;
    s->cv_.notify_all();
    return;
  }
  answered_any = true;
  s->refusal_ = absl::OkStatus();  // this stream was admitted
  ++s->stats_.answered;
  const int code = response_.code();
  StreamResult result;
  result.sequence = response_.sequence();
  result.outcome = StreamOutcome::kAnswered;
  result.status = code == 0
                      ? absl::OkStatus()
                      : absl::Status(code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code)
                                                            : absl::StatusCode::kUnknown,
                                     response_.message());
  result.values = absl::MakeConstSpan(response_.values().data(), response_.values_size());
  lock.unlock();
  s->Deliver(result);
  lock.lock();
  s->in_flight_.pop_front();
  s->resolved_through_ = result.sequence;
  s->cv_.notify_all();
  lock.unlock();
  StartRead(&response_);
}

void IncrementStream::Call::OnWriteDone(bool ok) {
  IncrementStream* const s = owner_;
  std::unique_lock lock(s->mu_);
  s->writing_ = false;
  v1::IncrementStreamRequest written = std::move(s->write_queue_.front());
  s->write_queue_.pop_front();
  v1::IncrementStreamRequest* next = nullptr;
  bool release = false;
  if (!ok) {  // the stream is broken; OnDone will say why
    release = EndWritesLocked();
  } else if (s->open_ && !s->write_queue_.empty()) {
    next = &s->write_queue_.front();
    s->writing_ = true;
    s->in_flight_[next->sequence() - s->in_flight_.front().sequence].written = true;
  } else if (!s->open_) {
    release = EndWritesLocked();
  }
  s->cv_.notify_all();
  lock.unlock();
  if (next != nullptr) StartWrite(next);
  s->Recycle(std::move(written));
  if (release) RemoveHold();
}

void IncrementStream::Call::OnWritesDoneDone(bool /*ok*/) {
  std::unique_lock lock(owner_->mu_);
  owner_->writing_ = false;
  const bool release = EndWritesLocked();
  lock.unlock();
  if (release) RemoveHold();
}

void IncrementStream::Call::OnDone(const grpc::Status& status) {
  IncrementStream* const s = owner_;
  std::unique_lock lock(s->mu_);
  absl::Status why = error.ok() ? FromGrpcStatus(status) : error;
  if (why.ok() && !s->in_flight_.empty()) {
    why =
        absl::InternalError("IncrementStream: the server ended the stream OK with answers missing");
  }
  if (s->open_) EndWritesLocked();
  if (!s->closing_) ++s->stats_.breaks;
  if (!why.ok() || s->last_error_.ok()) s->last_error_ = why;
  std::deque<StreamResult> results;
  // Refused at its start: the daemon admits a stream before it reads any
  // message (counters.proto: "at once"), so none of them was applied.
  const bool refused = !answered_any && (why.code() == absl::StatusCode::kUnauthenticated ||
                                         why.code() == absl::StatusCode::kPermissionDenied);
  if (refused) s->refusal_ = why;
  s->CollectUnresolvedLocked(why, refused, &results);
  lock.unlock();
  for (const StreamResult& r : results) s->Deliver(r);
  lock.lock();
  if (!results.empty()) s->resolved_through_ = results.back().sequence;
  finished = true;
  s->cv_.notify_all();
}

void IncrementStream::CollectUnresolvedLocked(const absl::Status& why, bool none_applied,
                                              std::deque<StreamResult>* out) {
  for (const InFlight& m : in_flight_) {
    StreamResult r;
    r.sequence = m.sequence;
    const bool unknown = m.written && !none_applied;
    r.outcome = unknown ? StreamOutcome::kUnknown : StreamOutcome::kNotSent;
    r.status = why.ok() ? absl::UnavailableError("the stream ended") : why;
    ++(unknown ? stats_.unknown : stats_.not_sent);
    out->push_back(std::move(r));
  }
  in_flight_.clear();
  write_queue_.clear();
}

namespace {
std::string Authorization(const std::string& bearer_token) {
  return bearer_token.empty() ? std::string() : absl::StrCat("Bearer ", bearer_token);
}
}  // namespace

IncrementStream::IncrementStream(std::shared_ptr<grpc::Channel> channel,
                                 IncrementStreamOptions options, ResultCallback on_result)
    : options_(std::move(options)),
      authorization_(Authorization(options_.client.bearer_token)),
      channel_(std::move(channel)),
      stub_(v1::CounterService::NewStub(channel_)),
      on_result_(std::move(on_result)),
      broken_since_(Clock::now()),
      last_error_(absl::UnavailableError("no stream opened yet")) {
  driver_ = std::thread([this] { Drive(); });
}

IncrementStream::~IncrementStream() { Close(options_.client.timeout); }

void IncrementStream::Deliver(const StreamResult& result) {
  if (on_result_) on_result_(result);
}

v1::IncrementStreamRequest IncrementStream::NewRequest() {
  std::lock_guard lock(mu_);
  if (spare_.empty()) return v1::IncrementStreamRequest();
  v1::IncrementStreamRequest request = std::move(spare_.back());  // a swap: the elements move too
  spare_.pop_back();
  return request;
}

void IncrementStream::Recycle(v1::IncrementStreamRequest request) {
  request.Clear();  // keeps the cleared increments for add_increments to reuse
  std::lock_guard lock(mu_);
  if (spare_.size() < static_cast<size_t>(std::max(1, options_.window))) {
    spare_.push_back(std::move(request));
  }
}

absl::StatusOr<uint64_t> IncrementStream::Send(absl::Span<const IncrementOp> ops) {
  v1::IncrementStreamRequest request = NewRequest();
  for (const IncrementOp& op : ops) {
    v1::IncrementRequest* inc = request.add_increments();
    inc->set_key(op.key.data(), op.key.size());
    inc->set_delta(op.delta);
  }
  return Send(std::move(request));
}

absl::StatusOr<uint64_t> IncrementStream::Send(v1::IncrementStreamRequest request) {
  if (options_.durable) request.mutable_options()->set_durable(true);
  const absl::Duration timeout = options_.client.timeout;
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  const size_t window = static_cast<size_t>(std::max(1, options_.window));
  std::unique_lock lock(mu_);
  while (true) {
    if (closing_) return absl::FailedPreconditionError("IncrementStream: Send after Close");
    // After a refused stream, one message at a time probes a new one.
    if (!refusal_.ok() && (!open_ || !in_flight_.empty())) {
      return absl::Status(
          refusal_.code(),
          absl::StrCat("IncrementStream: the daemon refused the stream: ", refusal_.message()));
    }
    if (open_ && in_flight_.size() < window) break;
    const Clock::time_point now = Clock::now();
    if (!open_) {
      const Clock::time_point give_up = broken_since_ + absl::ToChronoNanoseconds(timeout);
      if (now >= give_up) {
        // A refusal of the caller keeps its code; anything else is UNAVAILABLE.
        const absl::StatusCode code =
            last_error_.code() == absl::StatusCode::kUnauthenticated ||
                    last_error_.code() == absl::StatusCode::kPermissionDenied
                ? last_error_.code()
                : absl::StatusCode::kUnavailable;
        return absl::Status(code, absl::StrCat("IncrementStream: no stream open to the daemon for ",
                                               absl::FormatDuration(Since(broken_since_)), ": ",
                                               absl::StatusCodeToString(last_error_.code()), ": ",
                                               last_error_.message()));
      }
      cv_.wait_until(lock, std::min(deadline, give_up));
    } else {
      if (now >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("IncrementStream: the window of ", window,
                                                        " unanswered messages stayed full for ",
                                                        absl::FormatDuration(timeout)));
      }
      cv_.wait_until(lock, deadline);
    }
  }
  const uint64_t sequence = next_sequence_++;
  request.set_sequence(sequence);
  in_flight_.push_back(InFlight{sequence, Clock::now(), false, request.increments_size()});
  write_queue_.push_back(std::move(request));
  ++stats_.sent;
  v1::IncrementStreamRequest* start = nullptr;
  Call* const call = call_.get();
  if (!writing_) {  // open and idle: the queue held only this message
    writing_ = true;
    start = &write_queue_.front();
    in_flight_.back().written = true;
  }
  cv_.notify_all();  // the driver watches the oldest answer's deadline
  lock.unlock();
  // writing_ keeps the hold, so the call is alive.
  if (start != nullptr) call->StartWrite(start);
  return sequence;
}

absl::Status IncrementStream::WaitForResults(absl::Duration timeout) {
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  std::unique_lock lock(mu_);
  const uint64_t target = next_sequence_ - 1;
  if (!cv_.wait_until(lock, deadline, [&] { return resolved_through_ >= target; })) {
    return absl::DeadlineExceededError(absl::StrCat("IncrementStream: ", target - resolved_through_,
                                                    " messages still without a result after ",
                                                    absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

void IncrementStream::Close(absl::Duration timeout) {
  std::unique_lock lock(mu_);
  if (stop_) {  // closed, or being closed by another thread
    cv_.wait(lock, [&] { return closed_; });
    return;
  }
  closing_ = true;
  cv_.notify_all();
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  cv_.wait_until(lock, deadline, [&] { return in_flight_.empty(); });
  stop_ = true;
  stopped_at_ = Clock::now();
  cv_.notify_all();
  if (call_ != nullptr && open_) {
    Call* const call = call_.get();
    const bool graceful = in_flight_.empty() && !writing_;
    if (graceful) {
      writing_ = true;  // WritesDone is a write: it keeps the hold
    } else {
      call->error = absl::DeadlineExceededError(
          absl::StrCat("IncrementStream closed with ", in_flight_.size(),
                       " answers still due after ", absl::FormatDuration(timeout)));
    }
    const bool release = graceful ? false : call->EndWritesLocked();
    if (graceful) open_ = false;
    ++call->users;
    lock.unlock();
    if (graceful) {
      call->StartWritesDone();
    } else {
      call->context.TryCancel();
      if (release) call->RemoveHold();
    }
    lock.lock();
    --call->users;
    cv_.notify_all();
  }
  lock.unlock();
  driver_.join();
  lock.lock();
  closed_ = true;
  cv_.notify_all();
}

IncrementStream::Stats IncrementStream::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool IncrementStream::connected() const {
  std::lock_guard lock(mu_);
  return open_;
}

void IncrementStream::Drive() {
  absl::Duration backoff = options_.client.initial_backoff;
  absl::BitGen rng;
  std::unique_lock lock(mu_);
  while (!stop_) {
    // 1. A READY channel: gRPC (re)connects it with its own back-off.
    lock.unlock();
    grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY) {
      lock.lock();
      if (stop_) break;
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
    if (!call->hold_released && call->error.ok()) {
      open_ = true;
      cv_.notify_all();
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
    const bool worked = call->answered_any || Since(call->started) >= options_.client.max_backoff;
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
  cv_.notify_all();
}

}  // namespace countersd
