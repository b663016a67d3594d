// How each IncrementStream message gets its one result (increment_stream.h):
// resolved by its answer (Call::OnReadDone), or when its stream ends
// without one: kUnknown if it was written, kNotSent if it never left this
// process or the daemon refused the stream before reading it. With
// exactly_once a break resolves only the messages past their deadline (a
// first send ClientOptions::timeout ago) and queues the rest to be written
// again, in order, on the next stream; between streams the driver expires
// them the same way. Every function here runs under the stream's mu_, but
// DeliverAll, which calls the callback outside it.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/increment_stream.h"
#include "client/write_session.h"

namespace countersd {

namespace v1 = ::counters::v1;

void IncrementStream::EndPlaceLocked(InFlight& m) {
  if (!m.place.has_value()) return;
  session_->End({m.place->session_id, m.place->sequence, m.place->generation});
  m.place.reset();
}

void IncrementStream::RenewPlaceLocked(InFlight& m) {
  if (!m.place.has_value()) return;
  session_->Renew({m.place->session_id, m.place->sequence, m.place->generation});  // ends it too
  m.place.reset();
}

StreamResult IncrementStream::ResolveLocked(InFlight& m, StreamOutcome outcome,
                                           absl::Status status) {
  EndPlaceLocked(m);
  ++(outcome == StreamOutcome::kAnswered  ? stats_.answered
     : outcome == StreamOutcome::kUnknown ? stats_.unknown
                                          : stats_.not_sent);
  StreamResult r;
  r.sequence = m.sequence;
  r.outcome = outcome;
  r.status = std::move(status);
  return r;
}

void IncrementStream::CollectUnresolvedLocked(const absl::Status& why, bool none_applied,
                                              std::deque<StreamResult>* out) {
  for (InFlight& m : in_flight_) {
    // A message written on an earlier stream may have been applied there.
    const bool unknown = (m.written && !none_applied) || m.resent;
    out->push_back(ResolveLocked(m, unknown ? StreamOutcome::kUnknown : StreamOutcome::kNotSent,
                                 why.ok() ? absl::UnavailableError("the stream ended") : why));
  }
  in_flight_.clear();
  write_queue_.clear();
}

void IncrementStream::ExpireLocked(std::deque<StreamResult>* out) {
  const Clock::time_point now = Clock::now();
  const auto timeout = absl::ToChronoNanoseconds(options_.client.timeout);
  // Sent in sequence order, so the expired are the oldest.
  while (!in_flight_.empty() && now >= in_flight_.front().first_sent + timeout) {
    InFlight& m = in_flight_.front();
    out->push_back(ResolveLocked(
        m, m.written || m.resent ? StreamOutcome::kUnknown : StreamOutcome::kNotSent,
        absl::DeadlineExceededError(absl::StrCat(
            "IncrementStream: no answer to sequence ", m.sequence, " within ",
            absl::FormatDuration(options_.client.timeout), " of its first send (",
            absl::StatusCodeToString(last_error_.code()), ": ", last_error_.message(), ")"))));
    in_flight_.pop_front();
  }
  // Their requests, if not written, are the front of the queue.
  const uint64_t first = in_flight_.empty() ? next_sequence_ : in_flight_.front().sequence;
  while (!write_queue_.empty() && write_queue_.front().sequence() < first) {
    write_queue_.pop_front();
  }
}

void IncrementStream::RequeueLocked(std::deque<StreamResult>* out) {
  ExpireLocked(out);
  // The written ones first (their requests kept), then those never written
  // (still queued): sequence order.
  std::deque<v1::IncrementStreamRequest> queue;
  const Clock::time_point now = Clock::now();
  for (InFlight& m : in_flight_) {
    m.sent = now;
    if (!m.written) continue;
    queue.push_back(std::move(m.request));
    m.request.Clear();
    m.written = false;
    m.resent = true;
  }
  for (v1::IncrementStreamRequest& r : write_queue_) queue.push_back(std::move(r));
  write_queue_ = std::move(queue);
}

void IncrementStream::DeliverAll(std::unique_lock<std::mutex>& lock,
                                 std::deque<StreamResult>* results) {
  if (results->empty()) return;
  lock.unlock();
  for (const StreamResult& r : *results) Deliver(r);
  lock.lock();
  resolved_through_ = std::max(resolved_through_, results->back().sequence);
  results->clear();
  cv_.notify_all();
}

}  // namespace countersd
