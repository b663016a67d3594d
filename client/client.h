// CounterClient: a small typed C++ client for countersd (counters.v1).
//
//   countersd::CounterClient client("127.0.0.1:50051");
//   absl::StatusOr<int64_t> v = client.Increment("requests", 1);
//   if (!v.ok()) { /* v.status().code() is the server's canonical code */ }
//
// Every call returns absl::Status / absl::StatusOr with the server's canonical
// code and message (see proto/counters/v1/counters.proto for which codes each
// RPC returns); transport failures are UNAVAILABLE and an expired deadline is
// DEADLINE_EXCEEDED.
//
// Deadlines. Every call has one deadline, ClientOptions::timeout (default 5 s)
// from the moment the call is made. It covers every attempt and back-off of
// that call, so a retried call never takes longer than the timeout.
//
// Retries. Reads (Get, BatchGet, List, ListAll, GetStats, Health) are
// retried on UNAVAILABLE (the server was shutting down, a handler
// restarted, the connection broke), up to ClientOptions::max_attempts
// attempts with exponential back-off and jitter, within the deadline.
// Writes (Increment, IncrementBatch, Set, CompareAndSet, Delete) are
// retried the same way, and also on a lost reply: each attempt of a write
// has its own deadline, ClientOptions::attempt_timeout (default 1 s, never
// past the call's), and an attempt that runs out of it (a handler hung or
// killed with the reply) is retried, as is one the daemon cancelled (a
// handler shutting down cancels what it could not finish in its grace;
// CANCELLED by the caller's Cancellation ends the call). Every other code
// is returned at once:
// retrying NOT_FOUND or INVALID_ARGUMENT cannot help. Snapshot is never
// retried (each attempt writes a snapshot). With
// ClientOptions::exactly_once = false, writes are sent once, as Snapshot.
//
// Mutations are exactly-once (ClientOptions::exactly_once, the default).
// Each CounterClient has a session: 16 random bytes (getrandom(2)) and a
// sequence, 1, 2, 3, ..., one per write; every write carries them
// (WriteOptions, counters.proto) and every retry of it resends the same.
// The daemon remembers what it applied for each session and answers a
// duplicate with the original response without applying it again. So:
//  - a write is applied at most once, and exactly once if the call returns
//    OK, however many attempts it took;
//  - a retried CompareAndSet returns the original `applied` and value, a
//    retried Delete the value it deleted (not NOT_FOUND), a retried Set the
//    original previous value;
//  - a write that fails with any other code was not applied (the daemon's
//    own refusal: it remembers only writes that succeeded, so no earlier
//    attempt was applied either), but for the session refusals on a retry
//    below, whose message says "outcome unknown";
//  - a write that ends UNAVAILABLE, DEADLINE_EXCEEDED or CANCELLED after an
//    attempt was sent (the deadline ran out before any attempt was
//    answered, the daemon stayed down, a cancellation) may or may not have
//    been applied, and its message says so ("outcome unknown"). It can no
//    longer be resolved: calling again is a NEW write, with a new sequence,
//    applied again if the first one was.
// This holds within the session's memory in the daemon: a session idle for
// longer than the daemon's --session-ttl (default 1h), or pushed out by
// newer sessions past its --sessions-max (default 1024), is forgotten. A
// first attempt refused as an unknown session (FAILED_PRECONDITION
// "unknown session", shared/session_refusal.h) was not applied: the client
// starts a new session (a new id, sequences from 1) and sends the write
// again, once. The same refusal, or "older than the daemon remembers", on
// a retry is returned with "outcome unknown": the first attempt may have
// been applied before the daemon forgot it. The daemon remembers the last
// 64 sequences of a session (and at most 1,024 response values), so the
// client never has a write in flight that the daemon may have forgotten:
// a write waits, within its deadline, until its sequence is less than 64
// past the oldest write of the session still in flight, and the response
// values of the writes from that one to it fit in 512, half the daemon's
// 1,024 (client/write_session.h says why half). At most 64 writes of a
// client are in flight at once; more threads wait their turn
// (DEADLINE_EXCEEDED "... waiting for the session's window; not sent" if
// the deadline passes first).
// Sessions are per CounterClient: use one client per process and share it.
// A daemon restored from a snapshot after a host crash keeps that
// snapshot's sessions (counters.proto). With exactly_once = false (or
// against a daemon that ignores the options) a write that fails with
// UNAVAILABLE or DEADLINE_EXCEEDED may have been applied, and a retry by
// the caller may apply it twice. (gRPC's own transparent retry still
// resends a call that provably never left this process; that is safe for
// every method.)
//
// Durable writes. CallOptions::durable makes a write answer OK only once it
// is on stable storage (the daemon's log of durable writes, synced; a host
// crash or power loss then loses it neither from the live table nor from
// the restore). Without it a write is in the shared table when OK returns
// and survives every crash but the host's. INTERNAL from a durable write:
// applied, not known durable; its retry (same session) is answered once it
// is.
//
// Credentials. ClientOptions::bearer_token is sent with every call. A
// daemon with --auth-file answers UNAUTHENTICATED to a missing or unknown
// token and PERMISSION_DENIED to a call beyond the token's role or key
// prefixes; neither is retried.
//
// Per call (CallOptions, the last argument of every call): its own deadline,
// its own bearer token, and a Cancellation handle (cancellation.h) that
// cancels it from another thread (CANCELLED). TLS and mTLS are the
// channel's: CreateCounterChannel (channel.h).
//
// Streams and in-process sums. IncrementStream (increment_stream.h) keeps
// one IncrementStream RPC open and pipelines sequence-numbered batches over
// it; Accumulator (accumulator.h) sums Add(key, delta) calls in the process
// and flushes the sums over an IncrementStream in the background. Their
// loss model, stated once for both:
//  - an application crash loses what was not yet flushed and acknowledged
//    (the Accumulator's pending sums live in the process);
//  - a daemon crash loses nothing that was acknowledged;
//  - a message whose answer was lost when the stream broke is "unknown": it
//    may or may not have been applied; it is reported (its sequence, and
//    for the Accumulator its keys and deltas) and never resent, since a
//    resend could count it twice.
//
// Thread-safety: a CounterClient may be used from any number of threads at
// once; its only state across calls is its session (one mutex, held for
// a sequence's take and return). It does not own a connection per call:
// all calls share the channel, which reconnects by itself.
#ifndef COUNTERSD_CLIENT_CLIENT_H_
#define COUNTERSD_CLIENT_CLIENT_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/cancellation.h"
#include "counters/v1/counters.grpc.pb.h"

namespace countersd {

class WriteSession;  // client/write_session.h

struct ClientOptions {
  // Deadline of each call, covering all of its attempts and back-offs.
  absl::Duration timeout = absl::Seconds(5);
  // Attempts (the first one included) of a retryable call that keeps failing
  // with UNAVAILABLE (or, for a write, a lost reply). 1 disables retries.
  int max_attempts = 4;
  // Back-off before the n-th retry: a random duration in [b/2, b] where
  // b = min(max_backoff, initial_backoff * 2^(n-1)).
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(1);
  // A bearer token for a daemon with --auth-file: sent on every call as
  // "authorization: Bearer <token>" metadata (over any channel; use TLS
  // beyond a trusted network, the token is a password). Empty: none.
  std::string bearer_token;
  // Exactly-once writes (the top of this file): a session, a sequence on
  // every write, and writes retried. False: writes carry no WriteOptions
  // and are sent once (a failure after sending may have been applied).
  // CounterClient's calls only: IncrementStream and the Accumulator, which
  // take ClientOptions too, do not use sessions yet (their loss model
  // below).
  bool exactly_once = true;
  // With exactly_once, the deadline of each attempt of a write, so that a
  // reply that is not coming (a handler hung or killed after it took the
  // request) is retried within the call's deadline rather than waited for
  // until it. Never past the call's deadline. Zero: each attempt has the
  // call's deadline. A write slower than this is sent again and applied
  // once; set it above the slowest write you expect.
  absl::Duration attempt_timeout = absl::Seconds(1);
};

// One call's options, beside the client's. Default: the client's.
struct CallOptions {
  // This call's deadline, covering all of its attempts and back-offs
  // (ListAll: each page's). Zero: ClientOptions::timeout.
  absl::Duration timeout = absl::ZeroDuration();
  // This call's bearer token instead of ClientOptions::bearer_token. Empty:
  // the client's.
  std::string bearer_token;
  // Cancel() on it ends this call with CANCELLED, from any thread; a call
  // given a handle already cancelled is not sent. Null: not cancellable.
  std::shared_ptr<Cancellation> cancellation;
  // Writes only (Increment, IncrementBatch, Set, CompareAndSet, Delete):
  // answered OK only once the write is on stable storage, so that a host
  // crash or power loss right after the OK loses it neither from the live
  // table nor from what the restart restores (WriteOptions.durable,
  // counters.proto). Costs about one fsync of the daemon's disk per call
  // (concurrent durable writes share one). INTERNAL then means the write
  // is applied but not known durable; the client's retry with the same
  // session is answered once it is. Ignored by reads.
  bool durable = false;
};

// One increment of a batch. `key` must stay valid for the call.
struct IncrementOp {
  std::string_view key;
  int64_t delta = 1;
};

// A counter as BatchGet and List return it. `found` is false only in
// BatchGet results for a key that does not exist (value is then 0).
struct CounterEntry {
  std::string key;
  int64_t value = 0;
  bool found = true;
  friend bool operator==(const CounterEntry&, const CounterEntry&) = default;
};

struct ListPage {
  std::vector<CounterEntry> counters;  // sorted by key, bytewise
  std::string next_page_token;         // empty: the listing is complete
};

struct CompareAndSetResult {
  bool applied = false;
  int64_t value = 0;  // the value now stored (the current one if not applied)
};

struct SnapshotResult {
  uint64_t generation = 0;
  uint64_t counters = 0;
  uint64_t bytes = 0;
};

// grpc.health.v1 serving status.
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };
const char* ServingStatusName(ServingStatus status);

class CounterClient {
 public:
  // Connects to `address` ("host:port", or any gRPC target such as
  // "dns:///host:port") over an insecure channel. Does not block: connection
  // errors surface as UNAVAILABLE from the first call.
  explicit CounterClient(const std::string& address, ClientOptions options = {});
  // Uses an existing channel, e.g. one with TLS credentials or custom args.
  explicit CounterClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options = {});
  // Uses a given stub, e.g. the generated gMock stub in tests. Health needs a
  // channel: without one it returns FAILED_PRECONDITION.
  CounterClient(std::unique_ptr<counters::v1::CounterService::StubInterface> stub,
                ClientOptions options, std::shared_ptr<grpc::Channel> channel = nullptr);
  ~CounterClient();

  CounterClient(const CounterClient&) = delete;
  CounterClient& operator=(const CounterClient&) = delete;

  const ClientOptions& options() const { return options_; }
  // The channel calls go over; null if constructed from a bare stub.
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // Adds `delta` (may be negative) to the counter, creating it at 0 first,
  // and returns the new value. OUT_OF_RANGE if the result would overflow
  // int64 (the counter keeps its value). Exactly-once (see top of file).
  absl::StatusOr<int64_t> Increment(std::string_view key, int64_t delta = 1,
                                    const CallOptions& call = {});

  // Applies all increments atomically, or none; returns the value after each
  // one, in order. Exactly-once, the batch as one write.
  absl::StatusOr<std::vector<int64_t>> IncrementBatch(absl::Span<const IncrementOp> ops,
                                                      const CallOptions& call = {});

  // The counter's value. NOT_FOUND if it does not exist. Retried.
  absl::StatusOr<int64_t> Get(std::string_view key, const CallOptions& call = {});

  // One entry per key, in order, with found=false for missing counters.
  // RESOURCE_EXHAUSTED for more keys than the server's --max-batch. Retried.
  absl::StatusOr<std::vector<CounterEntry>> BatchGet(absl::Span<const std::string> keys,
                                                     const CallOptions& call = {});

  // One page of the counters whose key starts with `prefix`, sorted by key,
  // after `page_token` (empty: from the start). page_size 0 means the server
  // default. Retried.
  absl::StatusOr<ListPage> List(std::string_view prefix, int32_t page_size = 0,
                                std::string_view page_token = {}, const CallOptions& call = {});

  // Every counter whose key starts with `prefix`, sorted by key, by paging
  // through List (each page is retried on its own and has its own deadline).
  // Not a point-in-time view. Stops with RESOURCE_EXHAUSTED after `limit`
  // counters if limit > 0 would be exceeded.
  absl::StatusOr<std::vector<CounterEntry>> ListAll(std::string_view prefix, size_t limit = 0,
                                                    const CallOptions& call = {});

  // Sets the counter, creating it if needed; returns its previous value, or
  // nullopt if it did not exist. Exactly-once: a retry returns the original
  // previous value.
  absl::StatusOr<std::optional<int64_t>> Set(std::string_view key, int64_t value,
                                             const CallOptions& call = {});

  // Sets the counter to `value` only if it currently holds `expected` (a
  // missing counter counts as 0). Exactly-once: a retry returns the
  // original result, `applied` included.
  absl::StatusOr<CompareAndSetResult> CompareAndSet(std::string_view key, int64_t expected,
                                                    int64_t value, const CallOptions& call = {});

  // Deletes the counter and returns the value it had. NOT_FOUND if it did not
  // exist. Exactly-once: a retry of a delete that was applied returns the
  // value it deleted, not NOT_FOUND.
  absl::StatusOr<int64_t> Delete(std::string_view key, const CallOptions& call = {});

  // Asks the daemon for a snapshot and returns once it is durable. Not
  // retried: each attempt writes a snapshot.
  absl::StatusOr<SnapshotResult> Snapshot(const CallOptions& call = {});

  // Handler and table statistics, from whichever handler serves the call.
  // Retried.
  absl::StatusOr<counters::v1::GetStatsResponse> GetStats(const CallOptions& call = {});

  // grpc.health.v1.Health/Check for `service` ("" is the whole server).
  // NOT_FOUND if the server does not know the service. Retried.
  absl::StatusOr<ServingStatus> Health(std::string_view service = {}, const CallOptions& call = {});

 private:
  // kRead: retried on UNAVAILABLE. kWrite: with exactly_once, a session's
  // sequence in the request's options and retried (on UNAVAILABLE and a
  // lost reply); without, as kOnce. kOnce: one attempt.
  enum class CallKind { kRead, kWrite, kOnce };
  // Runs `attempt(context)` under the call's deadline, token and
  // cancellation, as `kind` says (the top of this file). `write_request`
  // (kWrite): the request whose options it sets, once per ticket; its
  // response holds `response_values` values (a batch's increments).
  template <typename Attempt, typename WriteRequest = counters::v1::IncrementRequest>
  absl::Status Run(CallKind kind, const CallOptions& call, Attempt&& attempt,
                   WriteRequest* write_request = nullptr, size_t response_values = 1);

  // A retry's back-off of `wait`; false if `cancellation` (may be null) was
  // cancelled first. With a channel, the wait is spent in
  // WaitForConnected until the channel is READY, then sleeping the rest:
  // a channel in TRANSIENT_FAILURE fails calls at once without polling, and
  // in gRPC's sync API a reconnection that no thread polls never completes
  // (its handshake times out), so a client that only slept between
  // fail-fast attempts would not reconnect after a daemon restart.
  bool BackOff(absl::Duration wait, Cancellation* cancellation);

  ClientOptions options_;
  std::string authorization_;  // "Bearer <token>", or empty
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<counters::v1::CounterService::StubInterface> stub_;
  std::unique_ptr<WriteSession> session_;  // null without exactly_once
};

}  // namespace countersd

#endif  // COUNTERSD_CLIENT_CLIENT_H_
