// The two CounterStores (counter_store.h): CounterClient over gRPC, and
// LocalTable attached to the daemon's table. Each only forwards and
// converts types; what the verbs print is theirs (verbs.cc, batch.cc).
#include "client/counterctl/counter_store.h"

#include <cstdlib>
#include <utility>

#include "client/counterctl/verbs.h"
#include "client/local/local_table.h"

namespace countersd::ctl {
namespace {

class RpcStore final : public CounterStore {
 public:
  explicit RpcStore(std::unique_ptr<CounterClient> client) : client_(std::move(client)) {}

  absl::StatusOr<int64_t> Increment(std::string_view key, int64_t delta) override {
    return client_->Increment(key, delta);
  }
  absl::StatusOr<int64_t> IncrementDurably(std::string_view key, int64_t delta) override {
    CallOptions call;
    call.durable = true;
    return client_->Increment(key, delta, call);
  }
  absl::StatusOr<std::vector<int64_t>> IncrementBatch(absl::Span<const IncrementOp> ops) override {
    return client_->IncrementBatch(ops);
  }
  absl::StatusOr<std::vector<CounterEntry>> BatchGet(absl::Span<const std::string> keys) override {
    return client_->BatchGet(keys);
  }
  absl::StatusOr<std::optional<int64_t>> Set(std::string_view key, int64_t value) override {
    return client_->Set(key, value);
  }
  absl::StatusOr<CompareAndSetResult> CompareAndSet(std::string_view key, int64_t expected,
                                                    int64_t value) override {
    return client_->CompareAndSet(key, expected, value);
  }
  absl::StatusOr<int64_t> Delete(std::string_view key) override { return client_->Delete(key); }
  // The reply may be what was lost (client.h, "Mutations").
  bool MayHaveApplied(const absl::Status& status) const override {
    return status.code() == absl::StatusCode::kUnavailable ||
           status.code() == absl::StatusCode::kDeadlineExceeded;
  }

 private:
  std::unique_ptr<CounterClient> client_;
};

class AttachedStore final : public CounterStore {
 public:
  explicit AttachedStore(std::unique_ptr<local::LocalTable> table) : table_(std::move(table)) {}

  absl::StatusOr<int64_t> Increment(std::string_view key, int64_t delta) override {
    return table_->Increment(key, delta);
  }
  absl::StatusOr<int64_t> IncrementDurably(std::string_view, int64_t) override {
    return absl::FailedPreconditionError(
        "--durable writes go through the daemon's log of durable writes; an attached "
        "process writes the live table directly: drop --attach");
  }
  absl::StatusOr<std::vector<int64_t>> IncrementBatch(absl::Span<const IncrementOp> ops) override {
    ops_.clear();
    for (const IncrementOp& op : ops) ops_.push_back({op.key, op.delta});
    return table_->IncrementBatch(ops_);
  }
  absl::StatusOr<std::vector<CounterEntry>> BatchGet(absl::Span<const std::string> keys) override {
    std::vector<std::string_view> views(keys.begin(), keys.end());
    absl::StatusOr<std::vector<std::optional<int64_t>>> got = table_->BatchGet(views);
    if (!got.ok()) return got.status();
    std::vector<CounterEntry> entries;
    entries.reserve(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::optional<int64_t>& v = (*got)[i];
      entries.push_back({keys[i], v.value_or(0), v.has_value()});
    }
    return entries;
  }
  absl::StatusOr<std::optional<int64_t>> Set(std::string_view key, int64_t value) override {
    return table_->Set(key, value);
  }
  absl::StatusOr<CompareAndSetResult> CompareAndSet(std::string_view key, int64_t expected,
                                                    int64_t value) override {
    absl::StatusOr<local::LocalTable::CasResult> r = table_->CompareAndSet(key, expected, value);
    if (!r.ok()) return r.status();
    return CompareAndSetResult{r->applied, r->value};
  }
  absl::StatusOr<int64_t> Delete(std::string_view key) override { return table_->Delete(key); }
  // A refused call changed nothing (local_table.h), UNAVAILABLE included.
  bool MayHaveApplied(const absl::Status&) const override { return false; }

 private:
  std::unique_ptr<local::LocalTable> table_;
  std::vector<local::LocalTable::KeyDelta> ops_;
};

}  // namespace

std::unique_ptr<CounterStore> OpenCounterStore(const Invocation& inv) {
  if (!inv.attached()) return std::make_unique<RpcStore>(Connect(inv));
  absl::StatusOr<std::unique_ptr<local::LocalTable>> table =
      local::LocalTable::Attach(inv.attach_dir);
  if (!table.ok()) std::exit(ReportError(inv, table.status()));
  return std::make_unique<AttachedStore>(*std::move(table));
}

}  // namespace countersd::ctl
