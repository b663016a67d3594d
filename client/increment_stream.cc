// IncrementStream; how it works is at the top of increment_stream.h.
#include "client/increment_stream.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "client/increment_stream_call.h"
#include "client/write_session.h"
#include "proto/status_conversion.h"
#include "shared/monotonic_time.h"
#include "shared/session_refusal.h"

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
  const int code = response_.code();
  absl::Status status =
      code == 0 ? absl::OkStatus()
                : absl::Status(code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code)
                                                      : absl::StatusCode::kUnknown,
                               response_.message());
  InFlight& m = s->in_flight_.front();
  StreamOutcome outcome = StreamOutcome::kAnswered;
  if (m.place.has_value()) {  // exactly_once ("Exactly once" in the header)
    const bool unknown_session = IsUnknownSessionError(status);
    // The daemon forgot the session before a resend reached it: the first
    // attempt may have been applied.
    if (m.resent && (unknown_session || IsForgottenSequenceError(status))) {
      outcome = StreamOutcome::kUnknown;
    }
    if (unknown_session) {  // the messages after it go under a new session
      s->RenewPlaceLocked(m);
    }
  }
  StreamResult result = s->ResolveLocked(m, outcome, std::move(status));
  if (outcome == StreamOutcome::kAnswered) {
    result.values = absl::MakeConstSpan(response_.values().data(), response_.values_size());
  }
  v1::IncrementStreamRequest kept = std::move(m.request);
  lock.unlock();
  s->Deliver(result);
  lock.lock();
  s->in_flight_.pop_front();
  s->resolved_through_ = result.sequence;
  s->cv_.notify_all();
  lock.unlock();
  if (kept.increments_size() > 0 || kept.has_options()) s->Recycle(std::move(kept));
  StartRead(&response_);
}

void IncrementStream::Call::OnWriteDone(bool ok) {
  IncrementStream* const s = owner_;
  std::unique_lock lock(s->mu_);
  s->writing_ = false;
  v1::IncrementStreamRequest written = std::move(s->write_queue_.front());
  s->write_queue_.pop_front();
  // exactly_once: kept with its message until answered, for a resend.
  bool kept = false;
  if (s->session_ != nullptr && !s->in_flight_.empty() &&
      written.sequence() >= s->in_flight_.front().sequence) {
    s->in_flight_[written.sequence() - s->in_flight_.front().sequence].request = std::move(written);
    kept = true;
  }
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
  if (!kept) s->Recycle(std::move(written));
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
  if (s->session_ != nullptr && !refused && !s->stop_) {
    s->RequeueLocked(&results);  // written again on the next stream
  } else {
    s->CollectUnresolvedLocked(why, refused, &results);
  }
  s->DeliverAll(lock, &results);
  finished = true;
  s->cv_.notify_all();
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
      session_(options_.exactly_once ? std::make_unique<WriteSession>() : nullptr),
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
  // exactly_once: the message's place in the session's window (it may
  // wait), ended unless the message is queued.
  std::optional<WriteSession::Ticket> ticket;
  if (session_ != nullptr) {
    absl::StatusOr<WriteSession::Ticket> t =
        session_->Begin(static_cast<size_t>(std::max(1, request.increments_size())),
                        MonotonicNow() + timeout, nullptr);
    if (!t.ok()) {
      return absl::Status(t.status().code(), absl::StrCat("IncrementStream: the session's window: ",
                                                          t.status().message()));
    }
    ticket = *std::move(t);
    request.mutable_options()->set_session_id(ticket->session_id);
    request.mutable_options()->set_sequence(ticket->sequence);
  }
  absl::Cleanup end_ticket = [&] {
    if (ticket.has_value()) session_->End(*ticket);
  };
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
                                               absl::FormatDuration(SinceSteady(broken_since_)),
                                               ": ",
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
  InFlight& m = in_flight_.emplace_back();
  m.sequence = sequence;
  m.sent = m.first_sent = Clock::now();
  m.increments = request.increments_size();
  if (ticket.has_value()) {
    m.place = SessionPlace{std::move(ticket->session_id), ticket->sequence, ticket->generation};
    ticket.reset();  // the message's now: resolving it ends it
  }
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

}  // namespace countersd
