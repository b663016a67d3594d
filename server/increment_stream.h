// IncrementStream, the bidirectional RPC of sequenced increment batches
// (proto/counters/v1/counters.proto states the contract), served on the
// handler's serving queue beside the unary calls (unary_call_loop.h), with
// no thread of its own. See increment_stream.cc for how a stream works and
// what bounds it.
#ifndef COUNTERSD_SERVER_INCREMENT_STREAM_H_
#define COUNTERSD_SERVER_INCREMENT_STREAM_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "grpcpp/server_context.h"
#include "server/counter_service.h"

namespace countersd {

class GroupCommit;

class IncrementStreams {
 public:
  // A handler's bounds (the proto's comment quotes them).
  // Streams open at once; one more waits in gRPC until one ends.
  static constexpr int kMaxStreams = 128;
  // Stream calls kept posted, so that new streams are matched at once.
  static constexpr int kPosted = 4;
  // Idle stream objects kept beyond the posted ones (the rest are freed).
  static constexpr int kMaxIdle = 4;
  // Answers a stream holds that the client has not read yet, the one being
  // written and those waiting for their durable sync included; at this
  // many it stops reading until one is sent.
  static constexpr size_t kMaxUnsentAnswers = 8;

  // `service` and `group_commit` outlive this; `group_commit` (null when
  // the service refuses durable writes) takes durable messages' records.
  IncrementStreams(CounterServiceImpl* service, GroupCommit* group_commit);
  ~IncrementStreams();
  IncrementStreams(const IncrementStreams&) = delete;
  IncrementStreams& operator=(const IncrementStreams&) = delete;

  // Serving thread, once: posts the first stream calls on `cq` (the queue
  // of the builder `service` was registered with).
  void StartServing(grpc::ServerCompletionQueue* cq);
  // Serving thread, at the loop's stop tag (the server's Shutdown has
  // returned, the queue is about to shut down): nothing is posted or
  // started on the queue any more; streams are freed as their operations
  // come back.
  void StopServing();
  // Any thread, after the service's StartDraining: every open stream sends
  // the answers it has, then ends UNAVAILABLE, without waiting for the
  // client's next message (an alarm on the queue).
  void StartDraining();
  // Blocks until no stream is open, or `deadline` (false).
  bool WaitForStreamsToEnd(absl::Time deadline);

  // Streams open now (accepted, not yet freed or recycled). Any thread.
  size_t open_streams() const { return open_.load(std::memory_order_relaxed); }

 private:
  class Stream;
  class DrainTag;
  friend class Stream;

  // Posts `stream`, or an idle one, or a new one; nothing at the bound or
  // once stopped.
  void Post(Stream* stream);
  void Accepted(Stream* stream);
  // A stream whose call is over: posted again, kept idle, or freed.
  void Ended(Stream* stream);
  void Free(Stream* stream);
  void DrainOpenStreams();

  CounterServiceImpl* const service_;
  GroupCommit* const group_commit_;
  grpc::ServerCompletionQueue* cq_ = nullptr;
  // Serving thread only:
  bool stopped_ = false;
  int streams_ = 0;  // objects that exist
  int posted_ = 0;
  std::vector<Stream*> idle_;
  std::unordered_set<Stream*> accepted_;
  // Any thread:
  std::atomic<size_t> open_{0};
  std::mutex mu_;
  std::condition_variable ended_;  // open_ fell to 0
  std::unique_ptr<DrainTag> drain_tag_;
  grpc::Alarm drain_alarm_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_INCREMENT_STREAM_H_
