// Accumulator; how it works is at the top of accumulator.h.
#include "client/accumulator.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"
#include "shared/batch_refusal.h"
#include "shared/key.h"
#include "shared/limits.h"

namespace countersd {

namespace v1 = ::counters::v1;

const char* AccumulatorError::KindName(Kind kind) {
  switch (kind) {
    case kBadKey:
      return "bad key";
    case kOverflow:
      return "sum would overflow";
    case kMemoryFull:
      return "memory bound reached";
    case kRefused:
      return "refused by the daemon";
    case kUnknown:
      return "outcome unknown";
    case kAbandoned:
      return "abandoned at close";
  }
  return "?";
}

namespace {

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address, const ClientOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.initial_backoff)));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.initial_backoff)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(o.max_backoff)));
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

Accumulator::Accumulator(const std::string& address, AccumulatorOptions options)
    : Accumulator(NewChannel(address, options.client), std::move(options)) {}

Accumulator::Accumulator(std::shared_ptr<grpc::Channel> channel, AccumulatorOptions options)
    : options_(std::move(options)),
      max_batch_(options_.max_batch == 0 ? kMaxBatchOps : options_.max_batch) {
  stream_ = std::make_unique<IncrementStream>(
      std::move(channel),
      IncrementStreamOptions{.client = options_.client,
                             .window = options_.window,
                             .durable = options_.durable,
                             .exactly_once = options_.exactly_once},
      [this](const StreamResult& r) { OnResult(r); });
  flusher_ = std::thread([this] { FlushLoop(); });
}

Accumulator::~Accumulator() {
  (void)Flush(options_.close_timeout);  // its errors were reported as they happened
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  flusher_.join();
  stream_->Close(options_.close_timeout);  // reports what stays unanswered
  stream_.reset();
  // What is left was never sent.
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    shard.dirty.insert(shard.dirty.end(), shard.cycle.begin(), shard.cycle.end());
    shard.cycle.clear();
    if (shard.dirty.empty()) continue;
    AccumulatorError e{AccumulatorError::kAbandoned,
                       absl::DeadlineExceededError(
                           absl::StrCat("Accumulator destroyed with sums not sent after its ",
                                        absl::FormatDuration(options_.close_timeout), " flush")),
                       {}};
    for (Node* n : shard.dirty) e.increments.emplace_back(n->first, n->second.sum);
    {
      std::lock_guard l(mu_);
      counts_.abandoned_increments += e.increments.size();
    }
    shard.dirty.clear();
    Report(std::move(e));
  }
}

absl::Status Accumulator::Add(std::string_view key, int64_t delta) {
  return AddTo(key, delta, Origin::kAdd);
}

absl::Status Accumulator::AddTo(std::string_view key, int64_t delta, Origin origin) {
  const size_t hash = shards_[0].map.hash_function()(Sv(key));
  Shard& shard = shards_[hash >> (64 - kShardBits)];
  std::unique_lock lock(shard.mu);
  Map::iterator it = shard.map.find(Sv(key), hash);
  if (it == shard.map.end()) {  // a new key: the slow path
    lock.unlock();
    if (origin == Origin::kAdd) {
      if (absl::Status s = ValidateKey(key); !s.ok()) {
        return Refuse(AccumulatorError::kBadKey, std::move(s), key, delta);
      }
    }
    const size_t cost = key.size() + kEntryOverheadBytes;
    if (memory_bytes_.fetch_add(cost, std::memory_order_relaxed) + cost >
        options_.max_memory_bytes) {
      memory_bytes_.fetch_sub(cost, std::memory_order_relaxed);
      return Refuse(AccumulatorError::kMemoryFull,
                    absl::ResourceExhaustedError(absl::StrCat(
                        "Accumulator: a new key would take the keys held past max_memory_bytes (",
                        options_.max_memory_bytes, " bytes); the delta was dropped")),
                    key, delta);
    }
    lock.lock();
    bool inserted;
    std::tie(it, inserted) = shard.map.try_emplace(std::string(key));
    if (inserted) {
      keys_.fetch_add(1, std::memory_order_relaxed);
      // The dirty lists never grow on the hot path: room for every key.
      if (shard.dirty.capacity() < shard.map.size()) {
        shard.dirty.reserve(2 * shard.map.size());
        shard.cycle.reserve(2 * shard.map.size());
      }
    } else {  // another thread inserted it meanwhile
      memory_bytes_.fetch_sub(cost, std::memory_order_relaxed);
    }
  }
  Node* const node = &*it;
  Entry& e = node->second;
  int64_t sum;
  if (__builtin_add_overflow(e.sum, delta, &sum)) {
    const int64_t pending = e.sum;
    lock.unlock();
    return Refuse(AccumulatorError::kOverflow,
                  absl::OutOfRangeError(
                      absl::StrCat("Accumulator: adding ", delta, " to the pending sum ", pending,
                                   " would overflow int64; the delta was not added")),
                  key, delta);
  }
  e.sum = sum;
  if (origin == Origin::kAdd) ++shard.adds;
  if (!e.dirty) {
    e.dirty = true;
    shard.dirty.push_back(node);
    if (pending_keys_.fetch_add(1, std::memory_order_relaxed) + 1 == options_.max_pending_keys) {
      cv_.notify_one();  // a flush now (a lost wake-up waits one interval)
    }
  }
  return absl::OkStatus();
}

absl::Status Accumulator::Refuse(AccumulatorError::Kind kind, absl::Status status,
                                 std::string_view key, int64_t delta) {
  switch (kind) {
    case AccumulatorError::kBadKey:
      bad_key_adds_.fetch_add(1, std::memory_order_relaxed);
      break;
    case AccumulatorError::kOverflow:
      overflow_adds_.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      dropped_adds_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  Report(AccumulatorError{kind, status, {{std::string(key), delta}}});
  return status;
}

void Accumulator::Report(AccumulatorError error) {
  std::lock_guard lock(report_mu_);
  if (first_error_.ok()) {
    first_error_ = absl::Status(
        error.status.code(),
        absl::StrCat(AccumulatorError::KindName(error.kind), ": ", error.status.message()));
  }
  if (options_.on_error) options_.on_error(error);
}

absl::Status Accumulator::Flush(absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) timeout = options_.client.timeout;
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  absl::Status result;
  {
    std::unique_lock lock(mu_);
    while (true) {
      const uint64_t restores = restores_;
      const uint64_t cycle = cycles_started_ + 1;  // the first to start after now
      flush_requested_ = true;
      cv_.notify_all();
      if (!cv_.wait_until(lock, deadline, [&] { return cycles_done_ >= cycle; })) {
        result = absl::DeadlineExceededError(
            absl::StrCat("Accumulator::Flush: the sums were not all sent within ",
                         absl::FormatDuration(timeout)));
        break;
      }
      if (!send_error_.ok()) {
        result = send_error_;
        break;
      }
      const uint64_t target = last_sent_;
      if (!cv_.wait_until(lock, deadline, [&] { return resolved_through_ >= target; })) {
        result = absl::DeadlineExceededError(
            absl::StrCat("Accumulator::Flush: ", target - resolved_through_,
                         " messages still unanswered after ", absl::FormatDuration(timeout)));
        break;
      }
      if (restores_ == restores) break;
      // Some deltas came back unsent (a stream broke): send them again.
    }
  }
  std::lock_guard lock(report_mu_);
  absl::Status first = std::move(first_error_);
  first_error_ = absl::OkStatus();
  return first.ok() ? result : first;
}

void Accumulator::FlushLoop() {
  const auto interval = absl::ToChronoNanoseconds(options_.flush_interval);
  std::unique_lock lock(mu_);
  while (true) {
    // After a cycle that could not send (no stream), only the interval or a
    // Flush starts the next: the pending keys stay many while the daemon is
    // down, and would otherwise start cycle after cycle.
    const bool may_hurry = send_error_.ok();
    cv_.wait_for(lock, interval, [&] {
      return stop_ || flush_requested_ ||
             (may_hurry &&
              pending_keys_.load(std::memory_order_relaxed) >= options_.max_pending_keys);
    });
    if (stop_) break;
    flush_requested_ = false;
    const uint64_t cycle = ++cycles_started_;
    lock.unlock();
    for (Shard& shard : shards_) {
      std::lock_guard shard_lock(shard.mu);
      shard.dirty.swap(shard.cycle);  // `cycle` was empty
    }
    absl::Status error;
    while (SendOne(&error)) {
    }
    if (!error.ok()) {  // what the cycle did not take waits for the next one
      for (Shard& shard : shards_) {
        std::lock_guard shard_lock(shard.mu);
        shard.dirty.insert(shard.dirty.end(), shard.cycle.begin(), shard.cycle.end());
        shard.cycle.clear();
      }
    }
    if (memory_bytes_.load(std::memory_order_relaxed) > options_.max_memory_bytes / 2) {
      EvictClean();
    }
    lock.lock();
    send_error_ = error;
    cycles_done_ = cycle;
    cv_.notify_all();
  }
}

bool Accumulator::SendOne(absl::Status* error) {
  Increments increments;
  increments.reserve(std::min<size_t>(max_batch_, pending_keys_.load(std::memory_order_relaxed)));
  for (Shard& shard : shards_) {
    if (increments.size() >= max_batch_) break;
    std::lock_guard lock(shard.mu);
    size_t taken = 0;
    while (!shard.cycle.empty() && increments.size() < max_batch_) {
      Node* const n = shard.cycle.back();
      shard.cycle.pop_back();
      increments.emplace_back(n->first, n->second.sum);
      n->second.sum = 0;
      n->second.dirty = false;
      ++taken;
    }
    pending_keys_.fetch_sub(taken, std::memory_order_relaxed);
  }
  if (increments.empty()) return false;
  v1::IncrementStreamRequest request = stream_->NewRequest();
  for (const auto& [key, delta] : increments) {
    v1::IncrementRequest* inc = request.add_increments();
    inc->set_key(key);
    inc->set_delta(delta);
  }
  {
    // Queued before Send: the result may arrive before Send returns.
    std::lock_guard lock(mu_);
    in_flight_.push_back(std::move(increments));
  }
  absl::StatusOr<uint64_t> sent = stream_->Send(std::move(request));
  std::unique_lock lock(mu_);
  if (sent.ok()) {
    last_sent_ = *sent;
    return true;
  }
  // Not sent: the back of the queue is this message (results pop the front).
  Increments back = std::move(in_flight_.back());
  in_flight_.pop_back();
  ++restores_;
  lock.unlock();
  Restore(back);
  *error = sent.status();
  return false;
}

void Accumulator::OnResult(const StreamResult& result) {
  std::unique_lock lock(mu_);
  Increments increments = std::move(in_flight_.front());
  in_flight_.pop_front();
  std::optional<AccumulatorError> report;
  bool restore = false;
  switch (result.outcome) {
    case StreamOutcome::kAnswered:
      if (result.status.ok()) {
        ++counts_.acked_messages;
        counts_.acked_increments += increments.size();
      } else if (result.status.code() == absl::StatusCode::kUnavailable) {
        // The handler is draining: the message changed nothing, and the
        // stream ends; its deltas go out again on the next one.
        restore = true;
        ++restores_;
      } else {
        report = AccumulatorError{AccumulatorError::kRefused, result.status, {}, result.sequence};
        ++counts_.refused_messages;
        // An overflow names its increment ("increment N: ...",
        // shared/batch_refusal.h): only that one is refused; the others,
        // not applied either (the message is atomic), go out again.
        const std::optional<BatchRefusal> named =
            result.status.code() == absl::StatusCode::kOutOfRange
                ? ParseBatchRefusal(result.status.message())
                : std::nullopt;
        if (named.has_value() && named->index < increments.size() && increments.size() > 1) {
          report->increments.push_back(std::move(increments[named->index]));
          increments.erase(increments.begin() + static_cast<ptrdiff_t>(named->index));
          restore = true;
          ++restores_;
          counts_.refused_increments += 1;
        } else {
          counts_.refused_increments += increments.size();
        }
      }
      break;
    case StreamOutcome::kUnknown:
      ++counts_.unknown_messages;
      counts_.unknown_increments += increments.size();
      report = AccumulatorError{AccumulatorError::kUnknown, result.status, {}, result.sequence};
      break;
    case StreamOutcome::kNotSent:
      restore = true;
      ++restores_;
      break;
  }
  lock.unlock();
  if (restore) Restore(increments);
  if (report) {
    if (report->increments.empty()) report->increments = std::move(increments);
    Report(std::move(*report));
  }
  lock.lock();
  resolved_through_ = result.sequence;
  cv_.notify_all();
}

void Accumulator::Restore(const Increments& increments) {
  for (const auto& [key, delta] : increments) (void)AddTo(key, delta, Origin::kRestore);
}

void Accumulator::EvictClean() {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (Map::iterator it = shard.map.begin(); it != shard.map.end();) {
      if (it->second.dirty) {
        ++it;
        continue;
      }
      memory_bytes_.fetch_sub(it->first.size() + kEntryOverheadBytes, std::memory_order_relaxed);
      keys_.fetch_sub(1, std::memory_order_relaxed);
      shard.map.erase(it++);
    }
  }
}

AccumulatorStats Accumulator::stats() const {
  AccumulatorStats s;
  {
    std::lock_guard lock(mu_);
    s = counts_;
  }
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    s.adds += shard.adds;
  }
  s.bad_key_adds = bad_key_adds_.load(std::memory_order_relaxed);
  s.overflow_adds = overflow_adds_.load(std::memory_order_relaxed);
  s.dropped_adds = dropped_adds_.load(std::memory_order_relaxed);
  s.keys = keys_.load(std::memory_order_relaxed);
  s.memory_bytes = memory_bytes_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace countersd
