// The writes made under a WriteControl (counter_table.h): a session's
// (exactly-once, session_table.cc) and durable ones (write_ahead_log.h).
// Each is journaled, so that what it changes and what it records (the
// session's entry, the LSN in its regions) commit with one store:
//  - increments: IncrementBatch's body (table_batch.cc, ApplyBatch) with the
//    session held;
//  - Set, CompareAndSet and Delete: JournaledKeyWrite below, a batch of one
//    key whose undo restores the value, removes a created counter or makes
//    a deleted one live again (crash_repair.cc), its place in the capacity
//    given back only once the delete is committed.
// A duplicate (session_table.cc, BeginSessionWrite) returns the first
// response and touches no region.
#include "shared/key.h"
#include "shared/key_hash.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::BatchJournal;
using layout::JournalEntry;
using layout::RegionShared;
using layout::Slot;
using table_internal::RunHook;

absl::StatusOr<WriteResponse> CounterTable::IncrementBatch(absl::Span<const KeyDelta> ops,
                                                           const WriteControl& control) {
  std::optional<WriteResponse> duplicate;
  std::optional<SessionHold> hold;
  if (control.session.has_value()) {
    ASSIGN_OR_RETURN(hold, BeginSessionWrite(*control.session, &duplicate));
    if (duplicate.has_value()) return *std::move(duplicate);
  }
  WriteResponse r;
  absl::StatusOr<std::vector<int64_t>> values =
      ApplyBatch(ops, hold.has_value() ? &*hold : nullptr, control.durable ? &r.lsn : nullptr);
  if (hold.has_value()) EndSessionWrite(*hold);
  if (!values.ok()) return values.status();
  r.values = *std::move(values);
  return r;
}

absl::StatusOr<WriteResponse> CounterTable::Set(std::string_view key, int64_t value,
                                                const WriteControl& control) {
  return JournaledKeyWrite(control, KeyWrite::kSet, key, 0, value);
}

absl::StatusOr<WriteResponse> CounterTable::CompareAndSet(std::string_view key, int64_t expected,
                                                          int64_t value,
                                                          const WriteControl& control) {
  return JournaledKeyWrite(control, KeyWrite::kCompareAndSet, key, expected, value);
}

absl::StatusOr<WriteResponse> CounterTable::Delete(std::string_view key,
                                                   const WriteControl& control) {
  return JournaledKeyWrite(control, KeyWrite::kDelete, key, 0, 0);
}

// One key's write, journaled like a batch of one (table_batch.cc), with
// the session's entry recorded before the commit.
absl::StatusOr<WriteResponse> CounterTable::JournaledKeyWrite(const WriteControl& control,
                                                              KeyWrite op, std::string_view key,
                                                              int64_t expected, int64_t value) {
  RETURN_IF_ERROR(ValidateKey(key));
  if (attach_token_ != 0) {
    return absl::UnavailableError("sessions and durable writes are the daemon's");
  }
  std::optional<WriteResponse> duplicate;
  std::optional<SessionHold> hold;
  if (control.session.has_value()) {
    ASSIGN_OR_RETURN(hold, BeginSessionWrite(*control.session, &duplicate));
    if (duplicate.has_value()) return *std::move(duplicate);
  }
  const uint64_t h = HashKey(key);
  const uint32_t r = RegionOf(h);
  BatchJournal* j = ClaimJournal();
  LockRegion(r);
  const uint32_t epoch = header_->snapshot_epoch.load(std::memory_order_acquire);
  CopyRegionIfPending(r, epoch);
  table_internal::MarkDirty(region(r));
  if (hold.has_value()) PrepareSessionChange(hold->slot, epoch);
  auto release = [&] {
    UnlockRegion(r);
    int32_t mine = Holder();
    j->owner.compare_exchange_strong(mine, 0, std::memory_order_release);
    if (hold.has_value()) EndSessionWrite(*hold);
  };
  Slot* s = Find(r, key, h);
  const int64_t current = s ? s->value.load(std::memory_order_relaxed) : 0;
  WriteResponse resp;
  bool store = false;  // write `value` to the counter (creating it when missing)
  switch (op) {
    case KeyWrite::kSet:
      resp.values = {current};
      resp.flag = s != nullptr;
      store = true;
      break;
    case KeyWrite::kCompareAndSet:
      resp.flag = current == expected;
      resp.values = {resp.flag ? value : current};
      store = resp.flag;
      break;
    case KeyWrite::kDelete:
      if (s == nullptr) {
        release();
        return table_internal::NotFound(key);
      }
      resp.values = {current};
      break;
  }
  const bool create = store && s == nullptr;
  if (create && (region(r)->live.load(std::memory_order_relaxed) + 1 > region_slots_ ||
                 !ReserveCapacity(1))) {
    release();
    return table_internal::TableFull(header_->capacity);
  }
  j->count = 0;
  j->reserved = create ? 1 : 0;
  j->session = 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  j->active.store(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (control.durable) resp.lsn = TakeWalLsn({&r, 1});
  if (create) {
    InsertSlot(r, key, h, value, j);
  } else if (s != nullptr && (store || op == KeyWrite::kDelete)) {
    JournalEntry& e = j->entries[j->count];
    e.region = r;
    e.slot = static_cast<uint32_t>(s - slots(r));
    e.old_value = current;
    e.created = op == KeyWrite::kDelete ? layout::kUndoDelete : layout::kUndoValue;
    ++j->count;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    RunHook(key);
    if (op == KeyWrite::kDelete) {
      table_internal::RewriteSlot(s, [&] { table_internal::StoreState(s, layout::kTombstone); });
      RegionShared* reg = region(r);
      table_internal::BumpKeySetVersion(reg);
      reg->live.store(reg->live.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    } else {
      s->value.store(value, std::memory_order_relaxed);
    }
  }
  if (hold.has_value()) RecordSessionEntry(j, *hold, resp.values, resp.flag);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  j->active.store(0, std::memory_order_release);  // commit point
  // A deleted counter's place is given back only once the delete is
  // committed: an undone one keeps it (TableHeader invariant 4).
  if (op == KeyWrite::kDelete) ReleaseCapacity(1);
  release();
  return resp;
}

}  // namespace countersd
