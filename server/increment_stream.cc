// IncrementStream on the serving queue.
//
// How it works. A Stream is one call's state: its context, its
// ServerAsyncReaderWriter over raw bytes (as the unary methods are raw, so
// that a message that does not parse gets INVALID_ARGUMENT naming the field,
// request_decoding.h), the message being handled, and the answers not yet
// written. gRPC allows one read and one write outstanding on a stream at
// once, so a Stream has a tag for each (and one for accept, one for
// Finish), and every completion runs on the serving thread:
//   1. Accepted (RequestIncrementStream came back ok): post another stream
//      call unless kPosted are posted or kMaxStreams exist; admit the call
//      (CounterServiceImpl::AdmitStream: draining, the caller's role), and
//      end it at once with that status if refused; else read.
//   2. A read completes ok: decode the message; handle it as one call of
//      IncrementStream (HandleCall of DoIncrementStream: the drain check,
//      the caller's admission under the policy in force and each key's
//      scope, the atomic batch, the stats row); the answer carries the
//      message's sequence and status and is queued. A message that is not
//      an IncrementStreamRequest still gets an answer if its sequence can be
//      read (wire format with no types: UnknownFieldSet), and ends the
//      stream INVALID_ARGUMENT if not (there is nothing to answer it by).
//      Then write the answer if no write is outstanding, and read the next
//      message unless kMaxUnsentAnswers are queued: so a client that stops
//      reading stops being read, and HTTP/2 flow control holds it.
//      A durable message (WriteOptions.durable) has applied and left a
//      record (CounterServiceImpl::TakeDurableWrite): it goes to the
//      handler's GroupCommit, and the answer is queued marked waiting for
//      its sync. Answers are written in order, so one waiting holds back
//      those behind it; the read goes on (up to kMaxUnsentAnswers), so a
//      stream's next durable messages join the same sync.
//   2a. A sync's outcome: the commit thread (group_commit.h) keeps it and
//      sets the stream's sync alarm, due in the infinite past, unless it is
//      set already; on this thread the alarm takes every outcome kept, in
//      the order the records were appended, and marks the oldest waiting
//      answers synced (a failed sync: the answer becomes that message's
//      INTERNAL), then writes as in step 3. The stream is not recycled
//      while a record's outcome is not taken (so neither while the alarm
//      is set).
//   3. A write completes: the next queued answer is written, and reading
//      resumes if it had stopped. A write that fails means the stream is
//      broken (the client went away): the rest is dropped.
//   4. A read completes not ok: the client closed its side (or the call was
//      cancelled). Once every answer is written, Finish with OK, or with the
//      status that ended it (draining: UNAVAILABLE).
//   5. The Finish completes: once the outstanding read, if any, has come
//      back too, the Stream is recycled (posted again, kept idle up to
//      kMaxIdle, or freed).
//  Draining (StartDraining, from the handler's main thread): an alarm on
//  the queue makes every accepted stream stop reading and Finish
//  UNAVAILABLE as soon as its queued answers are written, with a read still
//  outstanding (gRPC completes it not ok); a message that arrives meanwhile
//  is answered UNAVAILABLE by HandleCall's drain check and applied to
//  nothing. So a draining handler's streams end within a round trip, and
//  the handler waits for them (WaitForStreamsToEnd) up to its drain
//  deadline.
//  After StopServing (the server's Shutdown has returned: every call is
//  over or cancelled, the queue is shutting down) nothing is started on the
//  queue; each Stream is freed once its outstanding operations come back.
//  A stream costs no thread: its state, at most kMaxUnsentAnswers answers
//  (8 bytes a value), and gRPC's call.
//  At shutdown the handler destroys its GroupCommit (every outcome handed
//  over) before it stops the loop, so no sync alarm is set on a queue shut
//  down.
#include "server/increment_stream.h"

#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "google/protobuf/unknown_field_set.h"
#include "grpc/support/time.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "proto/status_conversion.h"
#include "server/group_commit.h"
#include "server/request_decoding.h"
#include "server/unary_call_loop.h"
#include "shared/monotonic_time.h"

namespace countersd {
namespace {

using counters::v1::IncrementStreamRequest;
using counters::v1::IncrementStreamResponse;

// The sequence (field 1, a varint) of a message that did not decode, read
// from its wire format with no types, or nullopt.
std::optional<uint64_t> SequenceOf(const std::string& bytes) {
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes)) return std::nullopt;
  std::optional<uint64_t> sequence;
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& f = fields.field(i);
    if (f.number() == 1 && f.type() == google::protobuf::UnknownField::TYPE_VARINT) {
      sequence = f.varint();  // the last one wins, as in a parse
    }
  }
  return sequence.value_or(0);  // absent: proto3's 0
}

// A message's answer as bytes, or the status that ends the stream if it
// cannot be serialized (a broken invariant).
grpc::Status SerializeAnswer(const IncrementStreamResponse& resp, grpc::ByteBuffer* out) {
  bool own_buffer;
  return grpc::SerializationTraits<IncrementStreamResponse>::Serialize(resp, out, &own_buffer);
}

// A failed status as the message's answer.
void SetFailure(const absl::Status& status, IncrementStreamResponse* resp) {
  resp->clear_values();
  resp->set_code(static_cast<int32_t>(status.code()));
  resp->set_message(std::string(status.message()));
}

}  // namespace

// A tag whose completion calls one of a Stream's steps.
template <typename T>
class StepTag final : public AsyncTag {
 public:
  StepTag(T* target, void (T::*step)(bool)) : target_(target), step_(step) {}
  void Proceed(bool ok) override { (target_->*step_)(ok); }

 private:
  T* const target_;
  void (T::*const step_)(bool);
};

class IncrementStreams::DrainTag final : public AsyncTag {
 public:
  explicit DrainTag(IncrementStreams* owner) : owner_(owner) {}
  void Proceed(bool ok) override {
    if (ok) owner_->DrainOpenStreams();  // not ok: cancelled at shutdown
  }

 private:
  IncrementStreams* const owner_;
};

class IncrementStreams::Stream {
 public:
  explicit Stream(IncrementStreams* owner) : owner_(owner) {}

  void Listen() {
    ctx_.emplace();
    stream_.emplace(&*ctx_);
    end_status_ = grpc::Status::OK;
    reading_ = writing_ = read_done_ = stop_reading_ = finishing_ = finished_ = false;
    // awaiting_sync_ is 0 and the sync alarm unset: Settle recycles only then.
    owner_->service_->RequestIncrementStream(&*ctx_, &*stream_, owner_->cq_, owner_->cq_,
                                             &accept_tag_);
  }

  // Serving thread: step "draining" of the top of this file. `this` may
  // be recycled by the time it returns.
  void Drain() {
    StopReading(ToGrpcStatus(CounterServiceImpl::DrainingError()));
    Settle();
  }

 private:
  void OnAccepted(bool ok) {
    --owner_->posted_;
    if (!ok) {  // shutting down: never matched
      owner_->Free(this);
      return;
    }
    owner_->Accepted(this);
    absl::Status admitted = owner_->service_->AdmitStream(&*ctx_);
    if (!admitted.ok()) {
      StopReading(ToGrpcStatus(admitted));
    } else {
      StartRead();
    }
    Settle();
  }

  void OnRead(bool ok) {
    reading_ = false;
    if (!ok) {
      read_done_ = true;
    } else if (stop_reading_) {  // the stream is ending: what arrived is not handled
      payload_.Clear();
    } else {
      Answer();
      WriteNext();
      if (!stop_reading_ && answers_.size() < kMaxUnsentAnswers) StartRead();
    }
    Settle();
  }

  void OnWritten(bool ok) {
    writing_ = false;
    answers_.pop_front();
    if (!ok) {  // broken: the client is gone
      answers_.clear();
      StopReading(grpc::Status(grpc::StatusCode::CANCELLED, "the stream broke"));
    }
    WriteNext();
    if (!stop_reading_ && !reading_ && !read_done_ && answers_.size() < kMaxUnsentAnswers) {
      StartRead();
    }
    Settle();
  }

  void OnFinished(bool /*ok: false if the client had gone*/) {
    finished_ = true;
    Settle();
  }

  // Step 2a. `ok` is false only for an alarm cancelled, which none is:
  // the outcomes are taken either way.
  void OnSynced(bool /*ok*/) {
    std::vector<absl::Status> outcomes;
    {
      std::lock_guard<std::mutex> lock(synced_mu_);
      sync_alarm_set_ = false;
      outcomes.swap(synced_);
    }
    auto it = answers_.begin();
    for (const absl::Status& outcome : outcomes) {
      --awaiting_sync_;
      while (it != answers_.end() && !it->awaiting_sync) ++it;
      if (it == answers_.end()) continue;  // dropped: the stream broke or the queue stopped
      it->awaiting_sync = false;
      if (!outcome.ok()) {
        resp_.set_sequence(it->sequence);
        SetFailure(outcome, &resp_);
        it->bytes.Clear();
        grpc::Status serialized = SerializeAnswer(resp_, &it->bytes);
        resp_.Clear();
        if (!serialized.ok()) StopReading(serialized);
      }
    }
    WriteNext();
    if (!stop_reading_ && !reading_ && !read_done_ && answers_.size() < kMaxUnsentAnswers) {
      StartRead();
    }
    Settle();
  }

  // Commit thread: a durable message's record came back (step 2a).
  void Synced(absl::Status outcome) {
    std::lock_guard<std::mutex> lock(synced_mu_);
    synced_.push_back(std::move(outcome));
    if (sync_alarm_set_) return;
    sync_alarm_set_ = true;
    sync_alarm_.Set(owner_->cq_, gpr_inf_past(GPR_CLOCK_MONOTONIC), &sync_tag_);
  }

  // Step 2's handling of the message in payload_: its answer queued.
  void Answer() {
    absl::Status status = DecodeRequest(&payload_, &req_, &failed_bytes_);
    std::optional<CounterServiceImpl::DurableWrite> durable;
    if (status.ok()) {
      resp_.set_sequence(req_.sequence());
      status = owner_->service_->HandleCall(&CounterServiceImpl::DoIncrementStream, &*ctx_, req_,
                                            &resp_);
      durable = owner_->service_->TakeDurableWrite();
    } else {
      std::optional<uint64_t> sequence = SequenceOf(failed_bytes_);
      failed_bytes_.clear();
      status = owner_->service_->RejectCall<IncrementStreamRequest>(&*ctx_, std::move(status));
      if (!sequence) {  // nothing to answer it by
        req_.Clear();
        StopReading(ToGrpcStatus(status));
        return;
      }
      resp_.set_sequence(*sequence);
    }
    if (!status.ok()) SetFailure(status, &resp_);
    QueuedAnswer& answer = answers_.emplace_back();
    answer.sequence = resp_.sequence();
    grpc::Status serialized = SerializeAnswer(resp_, &answer.bytes);
    req_.Clear();
    resp_.Clear();
    if (!serialized.ok()) {  // a broken invariant: the stream cannot go on
      answers_.pop_back();
      StopReading(serialized);
      if (durable.has_value()) {
        owner_->service_->CountDurableWrite(*durable, FromGrpcStatus(serialized));
      }
      return;
    }
    if (durable.has_value()) {  // only after an OK, and only with a log (ControlOf)
      answer.awaiting_sync = true;
      ++awaiting_sync_;
      const WalRecord record = std::move(durable->record);
      owner_->group_commit_->Append(record, [this, counted = *std::move(durable)](absl::Status st) {
        owner_->service_->CountDurableWrite(counted, st);
        Synced(std::move(st));
      });
    }
    if (owner_->service_->draining()) {
      StopReading(ToGrpcStatus(CounterServiceImpl::DrainingError()));
    }
  }

  void StartRead() {
    if (owner_->stopped_) return;
    reading_ = true;
    stream_->Read(&payload_, &read_tag_);
  }

  void WriteNext() {
    if (writing_ || answers_.empty() || answers_.front().awaiting_sync || owner_->stopped_) {
      return;
    }
    writing_ = true;
    stream_->Write(answers_.front().bytes, &write_tag_);
  }

  // Ends the stream with `status` once the queued answers are written
  // (the first reason given wins). Settle() finishes it.
  void StopReading(grpc::Status status) {
    if (stop_reading_) return;
    stop_reading_ = true;
    end_status_ = std::move(status);
  }

  // The last thing every step does: step 4 (Finish once nothing is left to
  // write and the client has closed its side or the stream ends early, a
  // read perhaps outstanding), then step 5 (recycled once Finish and every
  // operation have come back). `this` may be recycled or freed after it.
  void Settle() {
    if (!finishing_) {
      if (owner_->stopped_) {  // the queue is shutting down: nothing more is started
        if (!writing_) answers_.clear();
        stop_reading_ = true;
      }
      if (!writing_ && answers_.empty() && (read_done_ || stop_reading_)) {
        finishing_ = true;
        if (owner_->stopped_) {
          finished_ = true;  // no Finish: the call was cancelled by the Shutdown
        } else {
          stream_->Finish(end_status_, &finish_tag_);
        }
      }
    }
    // awaiting_sync_ == 0: every outcome was taken by an OnSynced, which
    // cleared the alarm's flag, and no record is left to set it again.
    if (!finished_ || reading_ || writing_ || awaiting_sync_ > 0) return;
    answers_.clear();
    payload_.Clear();
    stream_.reset();
    ctx_.reset();
    owner_->Ended(this);
  }

  IncrementStreams* const owner_;
  std::optional<grpc::ServerContext> ctx_;
  std::optional<grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream_;
  StepTag<Stream> accept_tag_{this, &Stream::OnAccepted};
  StepTag<Stream> read_tag_{this, &Stream::OnRead};
  StepTag<Stream> write_tag_{this, &Stream::OnWritten};
  StepTag<Stream> finish_tag_{this, &Stream::OnFinished};
  StepTag<Stream> sync_tag_{this, &Stream::OnSynced};
  grpc::ByteBuffer payload_;  // the message read
  std::string failed_bytes_;  // a message that did not decode
  IncrementStreamRequest req_;
  IncrementStreamResponse resp_;
  struct QueuedAnswer {
    grpc::ByteBuffer bytes;
    uint64_t sequence = 0;
    bool awaiting_sync = false;  // a durable message's, its record not yet synced
  };
  std::deque<QueuedAnswer> answers_;  // front: being written while writing_
  grpc::Status end_status_;
  bool reading_ = false;       // a Read outstanding
  bool writing_ = false;       // a Write outstanding
  bool read_done_ = false;     // a Read came back not ok: nothing more comes
  bool stop_reading_ = false;  // ending early, with end_status_
  bool finishing_ = false;     // Finish issued (or skipped once stopped)
  bool finished_ = false;      // and come back
  int awaiting_sync_ = 0;      // records with the commit thread, outcome not yet taken
  // Step 2a, between the commit thread and this one:
  std::mutex synced_mu_;
  std::vector<absl::Status> synced_;  // outcomes not yet taken, in append order
  bool sync_alarm_set_ = false;
  grpc::Alarm sync_alarm_;
};

IncrementStreams::IncrementStreams(CounterServiceImpl* service, GroupCommit* group_commit)
    : service_(service),
      group_commit_(group_commit),
      drain_tag_(std::make_unique<DrainTag>(this)) {}

IncrementStreams::~IncrementStreams() {
  // The queue is drained by now: every stream is idle.
  for (Stream* s : idle_) delete s;
}

void IncrementStreams::StartServing(grpc::ServerCompletionQueue* cq) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cq_ = cq;
  }
  for (int i = 0; i < kPosted; ++i) Post(nullptr);
}

void IncrementStreams::StopServing() { stopped_ = true; }

void IncrementStreams::StartDraining() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cq_ == nullptr) return;  // not serving yet: no stream can be open
  drain_alarm_.Set(cq_, gpr_now(GPR_CLOCK_MONOTONIC), drain_tag_.get());
}

bool IncrementStreams::WaitForStreamsToEnd(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return ended_.wait_for(lock, absl::ToChronoNanoseconds(deadline - MonotonicNow()),
                         [this] { return open_.load(std::memory_order_relaxed) == 0; });
}

void IncrementStreams::Post(Stream* stream) {
  if (stopped_) {
    if (stream != nullptr) Free(stream);
    return;
  }
  if (stream == nullptr) {
    if (!idle_.empty()) {
      stream = idle_.back();
      idle_.pop_back();
    } else if (streams_ < kMaxStreams) {
      stream = new Stream(this);
      ++streams_;
    } else {
      return;  // at the bound: gRPC holds the new stream until one ends
    }
  }
  ++posted_;
  stream->Listen();
}

void IncrementStreams::Accepted(Stream* stream) {
  accepted_.insert(stream);
  open_.fetch_add(1, std::memory_order_relaxed);
  if (posted_ < kPosted) Post(nullptr);
}

void IncrementStreams::Ended(Stream* stream) {
  accepted_.erase(stream);
  if (open_.fetch_sub(1, std::memory_order_relaxed) == 1) {
    std::lock_guard<std::mutex> lock(mu_);
    ended_.notify_all();
  }
  if (!stopped_ && posted_ < kPosted) {
    Post(stream);
  } else if (!stopped_ && static_cast<int>(idle_.size()) < kMaxIdle) {
    idle_.push_back(stream);
  } else {
    Free(stream);
  }
}

void IncrementStreams::Free(Stream* stream) {
  delete stream;
  --streams_;
}

void IncrementStreams::DrainOpenStreams() {
  std::vector<Stream*> open(accepted_.begin(), accepted_.end());
  for (Stream* s : open) s->Drain();
}

}  // namespace countersd
