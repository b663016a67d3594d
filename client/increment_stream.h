// IncrementStream: one IncrementStream RPC (counters.proto) kept open, with
// messages pipelined and the stream re-opened when it breaks.
//
//   countersd::IncrementStream stream(channel, {}, [](const countersd::StreamResult& r) {
//     // every sequence Send returned arrives here exactly once, in order
//   });
//   const countersd::IncrementOp ops[] = {{"requests", 3}, {"bytes", 512}};
//   absl::StatusOr<uint64_t> seq = stream.Send(ops);  // does not wait for the answer
//
// What each Send becomes. Send gives the message the stream's next sequence
// number (1, 2, 3, ... for the object's life, across reconnections) and
// returns it; the message then has exactly one StreamResult, delivered to
// the callback in sequence order:
//   kAnswered  the server's answer: the message's own status (a failed
//              message changed nothing) and, if OK, the value after each
//              increment;
//   kUnknown   the stream broke after the message was handed to gRPC and
//              before its answer came: it may or may not have been applied.
//              It is never resent (that could count it twice), unless the
//              stream is exactly_once (below, "Exactly once"); the caller
//              decides;
//   kNotSent   certainly not applied: the stream broke while the message
//              still waited in this object's queue behind another write (it
//              never left the process), or the daemon refused the stream
//              (UNAUTHENTICATED, PERMISSION_DENIED) before answering any of
//              its messages, which it does before reading one.
//
// Pipelining and its bound. At most `window` messages are unresolved at a
// time; Send waits for room (at most ClientOptions::timeout, then
// DEADLINE_EXCEEDED, having sent nothing). Send never waits for the network:
// messages queue here and are written one at a time.
//
// Breaks and reconnection. When the stream ends other than by Close (the
// handler was killed or restarted, the daemon is down, a message waited
// longer than ClientOptions::timeout for its answer, which cancels the
// stream), its unresolved messages are resolved as above and a background
// thread opens a new stream: it waits for the channel to be READY (gRPC
// reconnects the channel with its own back-off), then starts the call; a
// call that ends without delivering an answer is followed by a back-off
// (ClientOptions::initial_backoff doubling to max_backoff, jittered) before
// the next. It keeps trying until Close. A stream the daemon refuses at its
// start (UNAUTHENTICATED, PERMISSION_DENIED: the token may not increment)
// applied nothing; until a stream is admitted again, Send fails at once with
// that refusal, except for one message at a time that tries a new stream. Meanwhile Send waits for
// a stream for up to ClientOptions::timeout after the break; past that it fails at once with
// UNAVAILABLE (naming the last error) until a stream is open again, so that a caller with a daemon
// down is not held up.
//
// Why gRPC's callback API (ClientBidiReactor) and not the sync one: with the
// sync API a Send would block in Write on HTTP/2 flow control or on a dead
// peer, a thread would block in Read per stream, and deciding which
// messages a broken stream left unanswered would need the writer and the
// reader to meet before Finish. Here gRPC's threads run the reactions:
// OnReadDone delivers an answer and starts the next read, OnWriteDone
// starts the next queued write, and OnDone, which gRPC runs only after
// every read and write has completed, is the one place where a stream's
// end is known with everything it delivered, so the unresolved messages
// are decided there. One hold (AddHold) keeps OnDone from running while
// Send may still start a write from outside a reaction; it is released
// once the stream can take no more writes. gRPC may run a reaction inline
// inside a Start* call, so none is made with this object's mutex held.
//
// Exactly once (IncrementStreamOptions::exactly_once). The stream has a
// session (client/write_session.h: its id, its sequences, and the window
// that keeps every message in flight inside what the daemon remembers:
// messages in flight within 64 sequences of the oldest, their increments
// at most 512 together, a bigger message alone), and each message carries
// the session and its own sequence in its WriteOptions. At a break the
// unresolved messages are not resolved: once a new stream is open they are
// written on it again, in order, with the same session and sequences, and
// the daemon answers one it had applied with its first answer, applying
// nothing twice (counters.proto, WriteOptions). So a broken stream costs no
// kUnknown; a message becomes kUnknown only when it is still unanswered
// ClientOptions::timeout after it was first sent (the daemon down that
// long, or not answering), or when the daemon forgot the session before a
// resend reached it (idle past --session-ttl, or its place taken under
// --sessions-max): a resend answered "unknown session" or "older than the
// daemon remembers". A first send answered "unknown session" was not
// applied (kAnswered with that status) and the stream starts a new session
// for the messages after it. Costs: the window above (a Send may wait for
// it, up to ClientOptions::timeout), one session of the daemon's
// --sessions-max per stream, and the written messages kept until answered.
//
// ClientOptions: bearer_token is sent on every stream; timeout bounds each
// wait of Send, an answer's wait (then the stream is cancelled and
// reopened) and Close's default; initial_backoff and max_backoff pace the
// reconnections. max_attempts does not apply (a message is resent only
// with exactly_once, until its deadline).
//
// Thread-safety: Send, WaitForResults, stats() and Close may be called from
// any threads. The callback runs on gRPC's threads or inside a Send or
// Close call, never two at once and never with this object's lock held;
// it must not block and must not call Send or Close (it may record, notify
// and return).
#ifndef COUNTERSD_CLIENT_INCREMENT_STREAM_H_
#define COUNTERSD_CLIENT_INCREMENT_STREAM_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/client.h"
#include "counters/v1/counters.grpc.pb.h"

namespace countersd {

class WriteSession;

struct IncrementStreamOptions {
  ClientOptions client;
  // Messages sent and not yet resolved, at most. The server holds at most 8
  // answers unread; more in flight hides the round trip.
  int window = 16;
  // Every message durable (WriteOptions.durable): answered OK only once it
  // is on stable storage; an answer then waits for its sync and holds back
  // those behind it, and a stream's messages in flight share a sync.
  // kAnswered INTERNAL: applied, not known durable. A message the caller
  // builds may set its own options instead.
  bool durable = false;
  // Every message under this stream's session, resent after a break
  // ("Exactly once" above).
  bool exactly_once = false;
};

enum class StreamOutcome { kAnswered, kUnknown, kNotSent };
const char* StreamOutcomeName(StreamOutcome outcome);

struct StreamResult {
  uint64_t sequence = 0;
  StreamOutcome outcome = StreamOutcome::kAnswered;
  // kAnswered: the message's status. kUnknown, kNotSent: why the stream
  // ended (UNAVAILABLE for a broken connection, DEADLINE_EXCEEDED for an
  // answer that took too long, or the server's stream status).
  absl::Status status;
  // kAnswered with OK: the value after each increment, in order. Valid
  // during the callback only.
  absl::Span<const int64_t> values;
};

class IncrementStream {
 public:
  using ResultCallback = std::function<void(const StreamResult&)>;

  // Starts opening a stream over `channel` at once (in the background).
  IncrementStream(std::shared_ptr<grpc::Channel> channel, IncrementStreamOptions options,
                  ResultCallback on_result);
  // Close(options.client.timeout).
  ~IncrementStream();
  IncrementStream(const IncrementStream&) = delete;
  IncrementStream& operator=(const IncrementStream&) = delete;

  // Queues one message of `ops` (each key copied) and returns its sequence.
  // Not sent, no sequence used, on: FAILED_PRECONDITION after Close;
  // DEADLINE_EXCEEDED if the window stayed full for ClientOptions::timeout;
  // UNAVAILABLE if no stream is open and none could be for
  // ClientOptions::timeout since the last one broke; UNAUTHENTICATED or
  // PERMISSION_DENIED at once after the daemon refused the last stream so,
  // unless a new stream is open and idle (the message then tries it). The
  // server's checks (1..--max-batch increments, the keys) come back as the
  // message's kAnswered status, not from here.
  absl::StatusOr<uint64_t> Send(absl::Span<const IncrementOp> ops);
  // The same with the message built by the caller; its sequence is set here.
  absl::StatusOr<uint64_t> Send(counters::v1::IncrementStreamRequest request);
  // An empty message to fill and Send: one already written, cleared, whose
  // increments add_increments() reuses (no allocation per increment once
  // the stream has run a while), or a new one. Thread-safe.
  counters::v1::IncrementStreamRequest NewRequest();

  // Waits until every message sent so far has its result (the callback for
  // it has returned). DEADLINE_EXCEEDED after `timeout`.
  absl::Status WaitForResults(absl::Duration timeout);

  // Refuses further Sends, waits up to `timeout` for the answers still
  // due, then ends the stream (half-close, or a cancel if answers are still
  // missing: those are resolved kUnknown) and stops the background thread.
  // Every message has its result when Close returns. Idempotent.
  void Close(absl::Duration timeout);

  struct Stats {
    uint64_t sent = 0;      // sequences given out
    uint64_t answered = 0;  // kAnswered (OK or not)
    uint64_t unknown = 0;   // kUnknown
    uint64_t not_sent = 0;  // kNotSent
    uint64_t streams = 0;   // calls started (1 + reconnections)
    uint64_t breaks = 0;    // calls that ended other than by Close
  };
  Stats stats() const;
  // A stream is open and takes messages.
  bool connected() const;

 private:
  class Call;
  using Clock = std::chrono::steady_clock;

  // A message's WriteSession::Ticket (client/write_session.h, not an
  // installed header).
  struct SessionPlace {
    std::string session_id;
    uint64_t sequence = 0;
    uint64_t generation = 0;
  };
  struct InFlight {
    uint64_t sequence;
    Clock::time_point sent;  // last handed to a stream (for the answer's deadline)
    bool written = false;    // handed to gRPC (StartWrite) on the current stream
    int increments = 0;
    // exactly_once:
    Clock::time_point first_sent;        // Send: a resend ends ClientOptions::timeout after
    std::optional<SessionPlace> place;  // its WriteSession ticket, until resolved
    bool resent = false;                 // written on an earlier stream
    counters::v1::IncrementStreamRequest request;  // once written: kept for a resend
  };

  void Drive();
  // Under mu_: resolves every unresolved message of the ended call.
  // `none_applied`: the daemon refused the call before reading a message.
  void CollectUnresolvedLocked(const absl::Status& why, bool none_applied,
                               std::deque<StreamResult>* out);
  // Under mu_, exactly_once, after a break: resolves the unresolved
  // messages past their deadline (the oldest ones) as CollectUnresolved
  // does, and queues the rest to be written again on the next stream.
  void RequeueLocked(std::deque<StreamResult>* out);
  // Under mu_, exactly_once, between streams: resolves the messages past
  // their deadline.
  void ExpireLocked(std::deque<StreamResult>* out);
  // Under mu_ (exactly_once): m's place in the session freed (End), or,
  // the daemon having refused it as an unknown session, a new session
  // started (Renew).
  void EndPlaceLocked(InFlight& m);
  void RenewPlaceLocked(InFlight& m);
  // Under mu_: one message's result from its InFlight; ends its place.
  StreamResult ResolveLocked(InFlight& m, StreamOutcome outcome, absl::Status status);
  // Delivers `results` (outside mu_, which `lock` holds on return) and
  // advances resolved_through_.
  void DeliverAll(std::unique_lock<std::mutex>& lock, std::deque<StreamResult>* results);
  void Deliver(const StreamResult& result);
  // Keeps a written message for NewRequest (at most `window` of them).
  void Recycle(counters::v1::IncrementStreamRequest request);

  const IncrementStreamOptions options_;
  const std::string authorization_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<counters::v1::CounterService::Stub> stub_;
  const ResultCallback on_result_;
  const std::unique_ptr<WriteSession> session_;  // exactly_once only (write_session.h)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Call> call_;      // the stream, or null between streams
  bool open_ = false;               // call_ takes writes
  bool closing_ = false;            // Close called: no more Sends
  bool stop_ = false;               // the driver ends once no call is left
  Clock::time_point stopped_at_;    // when stop_ was set
  bool closed_ = false;             // Close has joined the driver
  Clock::time_point broken_since_;  // when the last stream ended (or construction)
  absl::Status last_error_;         // why it ended
  absl::Status refusal_;            // the daemon refused the last stream (UNAUTHENTICATED,
                                    // PERMISSION_DENIED); cleared by an answer
  uint64_t next_sequence_ = 1;
  uint64_t resolved_through_ = 0;   // every sequence <= this has its result
  std::deque<InFlight> in_flight_;  // unresolved, in sequence order
  std::deque<counters::v1::IncrementStreamRequest> write_queue_;  // front: being written
  std::vector<counters::v1::IncrementStreamRequest> spare_;       // written, cleared
  bool writing_ = false;
  Stats stats_;
  std::thread driver_;
};

}  // namespace countersd

#endif  // COUNTERSD_CLIENT_INCREMENT_STREAM_H_
