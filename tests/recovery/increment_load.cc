#include "tests/recovery/increment_load.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "counters/v1/counters.grpc.pb.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {

std::vector<std::string> Keys(const std::string& prefix, int n) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (int i = 0; i < n; ++i) keys.push_back(absl::StrCat(prefix, "/", i));
  return keys;
}

IncrementLoad::IncrementLoad(Options options) : options_(std::move(options)) {
  for (int i = 0; i < options_.threads; ++i) {
    auto t = std::make_unique<PerThread>();
    t->tally.resize(options_.keys.size());
    per_thread_.push_back(std::move(t));
  }
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this, i] { Run(i); });
}

IncrementLoad::~IncrementLoad() { Stop(); }

void IncrementLoad::Run(int index) {
  PerThread& me = *per_thread_[index];
  auto stub = NewStubOnOwnConnection(options_.address);
  bool last_failed = false;
  size_t next_key = index % options_.keys.size();
  counters::v1::IncrementBatchRequest batch;
  for (const std::string& key : options_.keys) batch.add_increments()->set_key(key);  // +1 each
  while (!stop_.load(std::memory_order_relaxed)) {
    size_t k = next_key;
    next_key = (next_key + 1) % options_.keys.size();
    grpc::ClientContext context;
    context.set_deadline(GrpcDeadlineAfter(options_.call_deadline));
    if (last_failed) context.set_wait_for_ready(true);
    {
      absl::MutexLock lock(&mu_);
      if (stop_.load()) break;  // Stop() cancels only what it can see.
      me.in_flight = &context;
      me.in_flight_key = k;
    }
    grpc::Status status;
    if (options_.batches) {
      counters::v1::IncrementBatchResponse response;
      status = stub->IncrementBatch(&context, batch, &response);
    } else {
      counters::v1::IncrementRequest request;
      request.set_key(options_.keys[k]);  // delta absent: +1
      counters::v1::IncrementResponse response;
      status = stub->Increment(&context, request, &response);
    }
    absl::MutexLock lock(&mu_);
    me.in_flight = nullptr;
    if (status.ok()) {
      if (options_.batches) {
        for (KeyTally& t : me.tally) ++t.acked;
      } else {
        ++me.tally[k].acked;
      }
      ++me.acked;
      ++total_acked_;
      last_failed = false;
    } else {
      if (options_.batches) {
        for (KeyTally& t : me.tally) ++t.unknown;
      } else {
        ++me.tally[k].unknown;
      }
      ++me.failures[status.error_code()];
      me.failure_examples.try_emplace(status.error_code(), status.error_message());
      last_failed = true;
    }
  }
}

bool IncrementLoad::WaitForAcked(int64_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return total_acked_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

int64_t IncrementLoad::acked() const {
  absl::MutexLock lock(&mu_);
  return total_acked_;
}

void IncrementLoad::Mark() {
  absl::MutexLock lock(&mu_);
  for (auto& t : per_thread_) t->acked_at_mark = t->acked;
}

bool IncrementLoad::WaitForEveryThreadAckedSinceMark(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (const auto& t : per_thread_) {
      if (t->acked <= t->acked_at_mark) return false;
    }
    return true;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

std::map<std::string, KeyTally> IncrementLoad::Progress() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, KeyTally> out;
  for (size_t k = 0; k < options_.keys.size(); ++k) {
    KeyTally& sum = out[options_.keys[k]];
    for (const auto& t : per_thread_) {
      sum.acked += t->tally[k].acked;
      sum.unknown += t->tally[k].unknown;
      if (t->in_flight != nullptr && (options_.batches || t->in_flight_key == k)) ++sum.unknown;
    }
  }
  return out;
}

void IncrementLoad::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stop_.store(true);
    for (auto& t : per_thread_) {
      if (t->in_flight != nullptr) t->in_flight->TryCancel();
    }
  }
  for (auto& thread : threads_) thread.join();
}

std::map<std::string, KeyTally> IncrementLoad::Tally() const {
  std::map<std::string, KeyTally> out;
  for (size_t k = 0; k < options_.keys.size(); ++k) {
    KeyTally& sum = out[options_.keys[k]];
    for (const auto& t : per_thread_) {
      sum.acked += t->tally[k].acked;
      sum.unknown += t->tally[k].unknown;
    }
  }
  return out;
}

std::map<grpc::StatusCode, int64_t> IncrementLoad::failure_codes() const {
  std::map<grpc::StatusCode, int64_t> out;
  for (const auto& t : per_thread_) {
    for (const auto& [code, n] : t->failures) out[code] += n;
  }
  return out;
}

std::map<grpc::StatusCode, std::string> IncrementLoad::failure_examples() const {
  std::map<grpc::StatusCode, std::string> out;
  for (const auto& t : per_thread_) {
    for (const auto& [code, msg] : t->failure_examples) out.try_emplace(code, msg);
  }
  return out;
}

}  // namespace countersd::testing
