// The table's side of the write-ahead log (write_ahead_log.h has how
// durable writes work): the values a durable retry logs, and the replay of
// the log onto a restored snapshot.
#include <algorithm>
#include <bit>

#include "shared/key.h"
#include "shared/key_hash.h"
#include "shared/log.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::Slot;

uint64_t CounterTable::TakeWalLsn(absl::Span<const uint32_t> regions) const {
  const uint64_t lsn = header_->wal_lsn.fetch_add(1, std::memory_order_seq_cst) + 1;
  for (uint32_t r : regions) region(r)->wal_lsn = lsn;
  return lsn;
}

uint64_t CounterTable::LastWalLsn() const { return header_->wal_lsn.load(); }

absl::StatusOr<WalRecord> CounterTable::CurrentValuesForLog(
    absl::Span<const std::string_view> keys) {
  if (attach_token_ != 0) return absl::UnavailableError("durable writes are the daemon's");
  std::vector<uint32_t> regions;
  std::vector<uint64_t> hashes;
  for (std::string_view key : keys) {
    RETURN_IF_ERROR(ValidateKey(key));
    hashes.push_back(HashKey(key));
    regions.push_back(RegionOf(hashes.back()));
  }
  std::vector<uint32_t> order = regions;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  for (uint32_t r : order) LockRegion(r);  // ascending: the one lock order
  const uint32_t epoch = header_->snapshot_epoch.load(std::memory_order_acquire);
  for (uint32_t r : order) {
    CopyRegionIfPending(r, epoch);
    table_internal::MarkDirty(region(r));
  }
  WalRecord rec;
  rec.lsn = TakeWalLsn(order);
  for (size_t i = 0; i < keys.size(); ++i) {
    const Slot* s = Find(regions[i], keys[i], hashes[i]);
    WalOp op;
    op.key = std::string(keys[i]);
    if (s != nullptr) {
      op.kind = WalOp::kSet;
      op.value = s->value.load(std::memory_order_relaxed);
    } else {
      op.kind = WalOp::kDelete;
    }
    rec.ops.push_back(std::move(op));
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) UnlockRegion(*it);
  return rec;
}

void CounterTable::ReplayWalRecord(const WalRecord& rec, const WalMarks& marks) {
  // The region a key had in the table the snapshot was taken from.
  const size_t regions = marks.region_lsn.size();
  const uint32_t shift =
      regions <= 1 ? 64 : 64 - static_cast<uint32_t>(std::countr_zero(uint64_t{regions}));
  for (const WalOp& op : rec.ops) {
    if (regions > 0) {
      const uint64_t r = shift == 64 ? 0 : HashKey(op.key) >> shift;
      if (r >= regions || rec.lsn <= marks.region_lsn[r]) continue;  // the snapshot holds it
    }
    absl::Status st;
    switch (op.kind) {
      case WalOp::kAdd:
        st = Increment(op.key, op.value).status();
        break;
      case WalOp::kSet:
        st = Set(op.key, op.value).status();
        break;
      case WalOp::kDelete:
        st = Delete(op.key).status();
        if (absl::IsNotFound(st)) st = absl::OkStatus();
        break;
    }
    if (!st.ok()) {
      // The log was written from a table that applied it; a table that
      // cannot is one the lost non-durable writes made different.
      Log(LogLevel::kError, "a durable write of the log could not be replayed",
          {{"lsn", rec.lsn}, {"key", op.key}, {"error", st.ToString()}});
    }
  }
  if (rec.session_id.has_value()) RestoreSessionEntry(*rec.session_id, rec.session_entry);
}

void CounterTable::FinishReplay(uint64_t last_lsn) {
  const uint64_t lsn = std::max(last_lsn, header_->wal_lsn.load());
  header_->wal_lsn.store(lsn);
  // Everything the log holds up to `lsn` is in the table now: the next
  // snapshot's marks say so, so a later restore does not replay it again.
  for (uint32_t r = 0; r < header_->regions; ++r) {
    region(r)->wal_lsn = lsn;
    table_internal::MarkDirty(region(r));
  }
}

}  // namespace countersd
