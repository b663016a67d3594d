#include "client/client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "client/write_session.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/grpc_deadline.h"
#include "proto/status_conversion.h"
#include "shared/abseil_string_view.h"
#include "shared/monotonic_time.h"
#include "shared/session_refusal.h"

namespace countersd {

namespace v1 = ::counters::v1;
namespace health = ::grpc::health::v1;

const char* ServingStatusName(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing:
      return "SERVING";
    case ServingStatus::kNotServing:
      return "NOT_SERVING";
    case ServingStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case ServingStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

CounterClient::CounterClient(const std::string& address, ClientOptions options)
    : CounterClient(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()), options) {}

namespace {
// The "authorization" metadata of a token; empty for none.
std::string Authorization(const std::string& bearer_token) {
  return bearer_token.empty() ? std::string() : absl::StrCat("Bearer ", bearer_token);
}
}  // namespace

CounterClient::CounterClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : options_(options),
      authorization_(Authorization(options_.bearer_token)),
      channel_(channel),
      stub_(v1::CounterService::NewStub(std::move(channel))),
      session_(options_.exactly_once ? std::make_unique<WriteSession>() : nullptr) {}

CounterClient::CounterClient(std::unique_ptr<v1::CounterService::StubInterface> stub,
                             ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      authorization_(Authorization(options_.bearer_token)),
      channel_(std::move(channel)),
      stub_(std::move(stub)),
      session_(options_.exactly_once ? std::make_unique<WriteSession>() : nullptr) {}

CounterClient::~CounterClient() = default;

namespace {

// The codes of a failed attempt after which a write may or may not have
// been applied: the reply, not the request, may be what was lost. Every
// other code is the daemon's answer: it applied nothing.
bool OutcomeUnknown(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kCancelled;
}

// `status` of an exactly-once write whose attempts were sent and none
// answered: the same code, and the message says that the outcome is
// unknown and that a new call is a new write (client.h, "Mutations").
absl::Status Unresolved(const absl::Status& status, uint64_t sequence) {
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(), " (outcome unknown: this write, sequence ", sequence,
                   " of the client's session, may or may not have been applied; calling again "
                   "makes a new write)"));
}

}  // namespace

bool CounterClient::BackOff(absl::Duration wait, Cancellation* cancellation) {
  const absl::Time end = MonotonicNow() + wait;
  if (channel_ != nullptr) {
    // Until the channel is READY, in slices that let a cancellation be seen.
    while (cancellation == nullptr || !cancellation->cancelled()) {
      const absl::Duration left = end - MonotonicNow();
      if (left <= absl::ZeroDuration()) return true;
      const absl::Duration slice =
          cancellation == nullptr ? left : std::min(left, absl::Milliseconds(20));
      if (channel_->WaitForConnected(GrpcDeadlineAfter(slice))) break;
    }
  }
  const absl::Duration rest = std::max(absl::ZeroDuration(), end - MonotonicNow());
  if (cancellation == nullptr) {
    absl::SleepFor(rest);
    return true;
  }
  return cancellation->SleepFor(rest);
}

template <typename Attempt, typename WriteRequest>
absl::Status CounterClient::Run(CallKind kind, const CallOptions& call, Attempt&& attempt,
                                WriteRequest* write_request, size_t response_values) {
  // One deadline for every attempt: gRPC's (on its monotonic clock) and
  // ours, to decide whether a back-off still fits.
  const absl::Duration timeout =
      call.timeout > absl::ZeroDuration() ? call.timeout : options_.timeout;
  const absl::Time deadline = MonotonicNow() + timeout;
  const gpr_timespec grpc_deadline = GrpcDeadlineAfter(timeout);
  const std::string authorization =
      call.bearer_token.empty() ? authorization_ : Authorization(call.bearer_token);
  Cancellation* const cancellation = call.cancellation.get();
  // Exactly-once: a write with the session's next sequence (write_session.h).
  WriteSession* const session = kind == CallKind::kWrite ? session_.get() : nullptr;
  const bool retryable = kind == CallKind::kRead || session != nullptr;
  const int max_attempts = retryable ? std::max(1, options_.max_attempts) : 1;
  absl::Duration backoff = options_.initial_backoff;
  absl::BitGen rng;

  // Durable (CallOptions::durable): every attempt asks for it.
  if (write_request != nullptr && call.durable) write_request->mutable_options()->set_durable(true);
  std::optional<WriteSession::Ticket> ticket;
  struct EndTicket {
    WriteSession* session;
    std::optional<WriteSession::Ticket>& ticket;
    ~EndTicket() {
      if (session != nullptr && ticket.has_value()) session->End(*ticket);
    }
  } end_ticket{session, ticket};
  // Takes the session's next sequence into the request's options: each
  // attempt sends the same.
  auto take_ticket = [&]() -> absl::Status {
    if (cancellation != nullptr && cancellation->cancelled()) {
      return absl::CancelledError("cancelled before it was sent");
    }
    absl::StatusOr<WriteSession::Ticket> t =
        session->Begin(response_values, deadline, cancellation);
    if (!t.ok()) return t.status();
    ticket = *std::move(t);
    v1::WriteOptions* options = write_request->mutable_options();
    options->set_session_id(ticket->session_id);
    options->set_sequence(ticket->sequence);
    return absl::OkStatus();
  };
  if (session != nullptr) {
    if (absl::Status s = take_ticket(); !s.ok()) return s;
  }
  int ticket_attempts = 0;  // attempts sent with the current ticket
  bool renewed = false;     // the session was renewed for this write
  // What this call returns on `status` once it stops trying.
  auto finish = [&](absl::Status status) {
    if (session == nullptr || ticket_attempts == 0 || !OutcomeUnknown(status.code())) {
      return status;
    }
    return Unresolved(status, ticket->sequence);
  };
  for (int n = 1;; ++n) {
    grpc::ClientContext context;
    // A write's attempt has its own deadline, so that a reply lost to a
    // hung or killed handler is retried rather than waited for until the
    // call's deadline; never past the call's.
    bool attempt_deadline = false;
    if (session != nullptr && options_.attempt_timeout > absl::ZeroDuration() &&
        MonotonicNow() + options_.attempt_timeout < deadline) {
      context.set_deadline(GrpcDeadlineAfter(options_.attempt_timeout));
      attempt_deadline = true;
    } else {
      context.set_deadline(grpc_deadline);
    }
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    if (cancellation != nullptr && !cancellation->Attach(&context)) {
      return finish(absl::CancelledError(n == 1 ? "cancelled before it was sent"
                                                : "cancelled before a retry"));
    }
    const grpc::Status result = attempt(&context);
    if (cancellation != nullptr) cancellation->Detach(&context);
    ++ticket_attempts;
    absl::Status status = FromGrpcStatus(result);
    if (status.ok()) return status;
    if (session != nullptr && IsUnknownSessionError(status)) {
      // On a first attempt: the daemon forgot the session (the write was
      // not applied); a new session, and the write sent again under it,
      // once. On a retry, an earlier attempt may have been applied before
      // the session was forgotten: unknown.
      if (ticket_attempts > 1 || renewed) return Unresolved(status, ticket->sequence);
      session->Renew(*ticket);
      ticket.reset();
      renewed = true;
      if (absl::Status s = take_ticket(); !s.ok()) return s;
      ticket_attempts = 0;
      --n;  // the refused attempt does not count against max_attempts
      continue;
    }
    if (session != nullptr && IsForgottenSequenceError(status) && ticket_attempts > 1) {
      return Unresolved(status, ticket->sequence);
    }
    // A write's reply is lost, and the write retried, when its attempt ran
    // out of its own deadline, or when the daemon cancelled it (a handler
    // shutting down cancels the calls still in flight after its grace);
    // CANCELLED by the caller's own Cancellation ends the call.
    const bool lost_reply =
        session != nullptr &&
        ((attempt_deadline && status.code() == absl::StatusCode::kDeadlineExceeded) ||
         (status.code() == absl::StatusCode::kCancelled &&
          (cancellation == nullptr || !cancellation->cancelled())));
    const bool retry = retryable && (status.code() == absl::StatusCode::kUnavailable || lost_reply);
    if (!retry || n >= max_attempts) return finish(status);
    // Full back-off in [b/2, b]; give up rather than sleep past the deadline.
    const absl::Duration b = std::min(backoff, options_.max_backoff);
    const absl::Duration wait =
        b / 2 + absl::Nanoseconds(absl::Uniform<int64_t>(
                    rng, 0, std::max<int64_t>(1, absl::ToInt64Nanoseconds(b / 2))));
    if (MonotonicNow() + wait >= deadline) return finish(status);
    if (!BackOff(wait, cancellation)) {
      return finish(absl::CancelledError("cancelled during the back-off before a retry"));
    }
    backoff = backoff * 2;
  }
}

absl::StatusOr<int64_t> CounterClient::Increment(std::string_view key, int64_t delta,
                                                 const CallOptions& call) {
  v1::IncrementRequest request;
  request.set_key(std::string(key));
  request.set_delta(delta);
  v1::IncrementResponse response;
  absl::Status status = Run(
      CallKind::kWrite, call,
      [&](grpc::ClientContext* c) { return stub_->Increment(c, request, &response); }, &request);
  if (!status.ok()) return status;
  return response.value();
}

absl::StatusOr<std::vector<int64_t>> CounterClient::IncrementBatch(
    absl::Span<const IncrementOp> ops, const CallOptions& call) {
  v1::IncrementBatchRequest request;
  request.mutable_increments()->Reserve(static_cast<int>(ops.size()));
  for (const IncrementOp& op : ops) {
    v1::IncrementRequest* inc = request.add_increments();
    inc->set_key(std::string(op.key));
    inc->set_delta(op.delta);
  }
  v1::IncrementBatchResponse response;
  absl::Status status = Run(
      CallKind::kWrite, call,
      [&](grpc::ClientContext* c) { return stub_->IncrementBatch(c, request, &response); },
      &request, std::max<size_t>(1, ops.size()));
  if (!status.ok()) return status;
  if (static_cast<size_t>(response.values_size()) != ops.size()) {
    return absl::InternalError(absl::StrCat("IncrementBatch: server returned ",
                                            response.values_size(), " values for ", ops.size(),
                                            " increments"));
  }
  return std::vector<int64_t>(response.values().begin(), response.values().end());
}

absl::StatusOr<int64_t> CounterClient::Get(std::string_view key, const CallOptions& call) {
  v1::GetRequest request;
  request.set_key(std::string(key));
  v1::GetResponse response;
  absl::Status status = Run(CallKind::kRead, call, [&](grpc::ClientContext* c) {
    return stub_->Get(c, request, &response);
  });
  if (!status.ok()) return status;
  return response.value();
}

absl::StatusOr<std::vector<CounterEntry>> CounterClient::BatchGet(
    absl::Span<const std::string> keys, const CallOptions& call) {
  v1::BatchGetRequest request;
  request.mutable_keys()->Reserve(static_cast<int>(keys.size()));
  for (const std::string& key : keys) request.add_keys(key);
  v1::BatchGetResponse response;
  absl::Status status = Run(CallKind::kRead, call, [&](grpc::ClientContext* c) {
    return stub_->BatchGet(c, request, &response);
  });
  if (!status.ok()) return status;
  if (static_cast<size_t>(response.counters_size()) != keys.size()) {
    return absl::InternalError(absl::StrCat("BatchGet: server returned ", response.counters_size(),
                                            " entries for ", keys.size(), " keys"));
  }
  std::vector<CounterEntry> out;
  out.reserve(keys.size());
  for (const v1::Counter& c : response.counters()) {
    out.push_back(CounterEntry{c.key(), c.value(), c.found()});
  }
  return out;
}

absl::StatusOr<ListPage> CounterClient::List(std::string_view prefix, int32_t page_size,
                                             std::string_view page_token, const CallOptions& call) {
  v1::ListRequest request;
  request.set_prefix(std::string(prefix));
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  v1::ListResponse response;
  absl::Status status = Run(CallKind::kRead, call, [&](grpc::ClientContext* c) {
    return stub_->List(c, request, &response);
  });
  if (!status.ok()) return status;
  ListPage page;
  page.counters.reserve(response.counters_size());
  for (v1::Counter& c : *response.mutable_counters()) {
    page.counters.push_back(CounterEntry{std::move(*c.mutable_key()), c.value(), true});
  }
  page.next_page_token = std::move(*response.mutable_next_page_token());
  return page;
}

absl::StatusOr<std::vector<CounterEntry>> CounterClient::ListAll(std::string_view prefix,
                                                                 size_t limit,
                                                                 const CallOptions& call) {
  std::vector<CounterEntry> all;
  std::string token;
  while (true) {
    absl::StatusOr<ListPage> page = List(prefix, /*page_size=*/1000, token, call);
    if (!page.ok()) return page.status();
    for (CounterEntry& c : page->counters) {
      if (limit > 0 && all.size() >= limit) {
        return absl::ResourceExhaustedError(
            absl::StrCat("more than ", limit, " counters match prefix \"", Sv(prefix), "\""));
      }
      all.push_back(std::move(c));
    }
    if (page->next_page_token.empty()) return all;
    if (page->next_page_token == token) {
      return absl::InternalError("List: server returned the same page token twice");
    }
    token = std::move(page->next_page_token);
  }
}

absl::StatusOr<std::optional<int64_t>> CounterClient::Set(std::string_view key, int64_t value,
                                                          const CallOptions& call) {
  v1::SetRequest request;
  request.set_key(std::string(key));
  request.set_value(value);
  v1::SetResponse response;
  absl::Status status = Run(
      CallKind::kWrite, call,
      [&](grpc::ClientContext* c) { return stub_->Set(c, request, &response); }, &request);
  if (!status.ok()) return status;
  if (!response.has_previous_value()) return std::optional<int64_t>();
  return std::optional<int64_t>(response.previous_value());
}

absl::StatusOr<CompareAndSetResult> CounterClient::CompareAndSet(std::string_view key,
                                                                 int64_t expected, int64_t value,
                                                                 const CallOptions& call) {
  v1::CompareAndSetRequest request;
  request.set_key(std::string(key));
  request.set_expected(expected);
  request.set_value(value);
  v1::CompareAndSetResponse response;
  absl::Status status = Run(
      CallKind::kWrite, call,
      [&](grpc::ClientContext* c) { return stub_->CompareAndSet(c, request, &response); },
      &request);
  if (!status.ok()) return status;
  return CompareAndSetResult{response.applied(), response.value()};
}

absl::StatusOr<int64_t> CounterClient::Delete(std::string_view key, const CallOptions& call) {
  v1::DeleteRequest request;
  request.set_key(std::string(key));
  v1::DeleteResponse response;
  absl::Status status = Run(
      CallKind::kWrite, call,
      [&](grpc::ClientContext* c) { return stub_->Delete(c, request, &response); }, &request);
  if (!status.ok()) return status;
  return response.previous_value();
}

absl::StatusOr<SnapshotResult> CounterClient::Snapshot(const CallOptions& call) {
  v1::SnapshotRequest request;
  v1::SnapshotResponse response;
  absl::Status status = Run(CallKind::kOnce, call, [&](grpc::ClientContext* c) {
    return stub_->Snapshot(c, request, &response);
  });
  if (!status.ok()) return status;
  return SnapshotResult{response.generation(), response.counters(), response.bytes()};
}

absl::StatusOr<v1::GetStatsResponse> CounterClient::GetStats(const CallOptions& call) {
  v1::GetStatsRequest request;
  v1::GetStatsResponse response;
  absl::Status status = Run(CallKind::kRead, call, [&](grpc::ClientContext* c) {
    return stub_->GetStats(c, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<ServingStatus> CounterClient::Health(std::string_view service,
                                                    const CallOptions& call) {
  if (channel_ == nullptr) {
    return absl::FailedPreconditionError("Health needs a channel; this client has only a stub");
  }
  std::unique_ptr<health::Health::Stub> stub = health::Health::NewStub(channel_);
  health::HealthCheckRequest request;
  request.set_service(std::string(service));
  health::HealthCheckResponse response;
  absl::Status status = Run(CallKind::kRead, call, [&](grpc::ClientContext* c) {
    return stub->Check(c, request, &response);
  });
  if (!status.ok()) return status;
  // A status this client does not know (a newer server's) is UNKNOWN.
  const int serving = static_cast<int>(response.status());
  return serving >= 0 && serving <= static_cast<int>(ServingStatus::kServiceUnknown)
             ? static_cast<ServingStatus>(serving)
             : ServingStatus::kUnknown;
}

}  // namespace countersd
