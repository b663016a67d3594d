#include "client/local/local_table.h"

#include "absl/strings/str_cat.h"
#include "shared/attach_grant.h"
#include "shared/counter_table.h"
#include "shared/data_dir.h"
#include "shared/key.h"
#include "shared/layout.h"
#include "shared/status_macros.h"

namespace countersd::local {
namespace {

// Counts the call in the handle's attach slot, whatever its outcome.
template <typename T>
T Counted(CounterTable* t, layout::AttachOp op, T result) {
  t->CountAttachedCall(op, result.ok());
  return result;
}

}  // namespace

LocalTable::LocalTable(std::unique_ptr<CounterTable> table) : table_(std::move(table)) {}
LocalTable::~LocalTable() = default;

absl::StatusOr<std::unique_ptr<LocalTable>> LocalTable::Attach(const std::string& data_dir) {
  ASSIGN_OR_RETURN(AttachGrant grant,
                   RequestAttachGrant(absl::StrCat(data_dir, "/", kAttachSocket)));
  ASSIGN_OR_RETURN(std::unique_ptr<CounterTable> table,
                   CounterTable::Attach(absl::StrCat(data_dir, "/", kMapFile), grant));
  return std::unique_ptr<LocalTable>(new LocalTable(std::move(table)));
}

uint32_t LocalTable::slot() const { return table_->attach_slot(); }

absl::StatusOr<int64_t> LocalTable::Increment(std::string_view key, int64_t delta) {
  return Counted(table_.get(), layout::kAttachIncrement, table_->Increment(key, delta));
}

absl::StatusOr<std::vector<int64_t>> LocalTable::IncrementBatch(
    absl::Span<const KeyDelta> increments) {
  auto run = [&]() -> absl::StatusOr<std::vector<int64_t>> {
    if (increments.empty()) return absl::InvalidArgumentError("increments is empty");
    static thread_local std::vector<CounterTable::KeyDelta> ops;
    ops.clear();
    for (size_t i = 0; i < increments.size(); ++i) {
      RETURN_IF_ERROR(ValidateKeyAt(increments[i].key, "increments", i));
      ops.push_back({increments[i].key, increments[i].delta});
    }
    return table_->IncrementBatch(ops);
  };
  return Counted(table_.get(), layout::kAttachIncrementBatch, run());
}

absl::StatusOr<int64_t> LocalTable::Get(std::string_view key) const {
  return Counted(table_.get(), layout::kAttachGet, table_->Get(key));
}

absl::StatusOr<std::vector<std::optional<int64_t>>> LocalTable::BatchGet(
    absl::Span<const std::string_view> keys) const {
  auto run = [&]() -> absl::StatusOr<std::vector<std::optional<int64_t>>> {
    if (keys.size() > kMaxBatchOps) {
      return absl::ResourceExhaustedError(
          absl::StrCat("batch of ", keys.size(), " keys exceeds the limit of ", kMaxBatchOps));
    }
    for (size_t i = 0; i < keys.size(); ++i) RETURN_IF_ERROR(ValidateKeyAt(keys[i], "keys", i));
    std::vector<std::optional<int64_t>> out;
    out.reserve(keys.size());
    for (std::string_view key : keys) {
      absl::StatusOr<int64_t> v = table_->Get(key);
      if (v.ok()) {
        out.push_back(*v);
      } else if (absl::IsNotFound(v.status())) {
        out.push_back(std::nullopt);
      } else {
        return v.status();
      }
    }
    return out;
  };
  return Counted(table_.get(), layout::kAttachBatchGet, run());
}

absl::StatusOr<std::optional<int64_t>> LocalTable::Set(std::string_view key, int64_t value) {
  return Counted(table_.get(), layout::kAttachSet, table_->Set(key, value));
}

absl::StatusOr<LocalTable::CasResult> LocalTable::CompareAndSet(std::string_view key,
                                                               int64_t expected, int64_t value) {
  absl::StatusOr<CounterTable::CasResult> r = table_->CompareAndSet(key, expected, value);
  table_->CountAttachedCall(layout::kAttachCompareAndSet, r.ok());
  if (!r.ok()) return r.status();
  return CasResult{r->applied, r->value};
}

absl::StatusOr<int64_t> LocalTable::Delete(std::string_view key) {
  return Counted(table_.get(), layout::kAttachDelete, table_->Delete(key));
}

}  // namespace countersd::local
