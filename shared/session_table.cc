// How exactly-once sessions work
// ==============================
//
// A write with WriteOptions (counters.proto) names a session (16 bytes its
// client chose) and a sequence. The daemon keeps each session in a
// SessionSlot of the map file (layout.h): the highest sequence applied, a
// window of the last kSessionWindow writes (sequence, the request's
// fingerprint, where its response is) and the response values they point
// into. So a session outlives a handler's crash (the mapping), a restart
// (the file) and, through snapshots, a host crash.
//
//  1. Find the session (LockSession). This process's cache maps its id to
//     a slot; the slot's lock is taken and its id checked again (the
//     session may have been forgotten and the slot reused). Otherwise,
//     under the directory lock, every slot's id is compared; otherwise a
//     slot is taken for it: a free one while fewer than --sessions-max are
//     live, else the least recently written (an expired one first). A
//     session is started only by a sequence within the window (the first
//     writes of a client arrive in any order): a higher one belongs to a
//     session that was forgotten, and is refused (UnknownSessionError), so
//     a retry of a forgotten session's write is never applied again. A
//     session found idle longer than --session-ttl is forgotten at once.
//  2. With its slot's lock held, look the sequence up (BeginSessionWrite).
//     The same sequence and fingerprint: the stored response, and nothing
//     else happens. The same sequence with another fingerprint:
//     INVALID_ARGUMENT. At or below highest - window, or with its values
//     overwritten since: ForgottenSequenceError. Otherwise it is new.
//  3. A new write runs journaled: IncrementBatch's body (table_batch.cc,
//     ApplyBatch) for increments, JournaledKeyWrite (journaled_writes.cc) for Set,
//     CompareAndSet and Delete. With its regions held and the snapshot
//     epoch read, the session's slot is copied for the snapshot first if
//     the epoch asks for it (PrepareSessionChange; the same rule as a
//     region, snapshot_staging.cc), so a snapshot holds the write and its
//     entry, or neither.
//  4. Before the journal's commit store, RecordSessionEntry saves the
//     entry it replaces and the old highest in the journal (BatchJournal
//     invariant 5), then appends the values, writes the entry and raises
//     highest. The one commit store commits the write and its entry. A
//     process killed before it leaves an active journal whose undo
//     restores the counters and the entry and highest (crash_repair.cc).
//     The values' end is never rolled back: the values the undone write
//     overwrote make the entries that pointed at them invalid, never
//     wrong.
//  5. Only successes are recorded. A refused write (overflow, a full
//     table, NOT_FOUND) releases everything and records nothing: it
//     changed nothing, and its retry runs again.
//
// Lock order: the directory's lock, then one session slot's, then the
// regions' in ascending order; nobody takes the directory or a session's
// lock while holding a region's. Sessions are the daemon's: an attached
// handle gets UNAVAILABLE (attached writes are local calls, with nothing
// to retry).
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "shared/session_refusal.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd {

using layout::BatchJournal;
using layout::SessionDirectory;
using layout::SessionEntry;
using layout::SessionSlot;
using table_internal::RunHook;

struct CounterTable::SessionCache {
  using Id = std::array<char, kSessionIdBytes>;
  std::mutex mu;
  absl::flat_hash_map<Id, uint32_t> slot_of;  // id -> slot index
};

void CounterTable::SessionCacheDeleter::operator()(SessionCache* cache) const { delete cache; }

namespace {

bool EntryValuesKept(const SessionSlot& s, const SessionEntry& e) {
  return e.count >= 1 && e.count <= kSessionResponseValues &&
         s.values_end - e.values_at <= kSessionResponseValues &&
         e.values_at + e.count <= s.values_end;
}

WriteResponse ResponseOf(const SessionSlot& s, const SessionEntry& e) {
  WriteResponse r;
  r.values.resize(e.count);
  for (uint32_t k = 0; k < e.count; ++k) {
    r.values[k] = s.values[(e.values_at + k) % kSessionResponseValues];
  }
  r.flag = e.flag != 0;
  r.duplicate = true;
  return r;
}

bool Expired(const SessionSlot& s, int64_t now, int64_t ttl_ns) {
  return now - s.last_write_unix_ns.load(std::memory_order_relaxed) > ttl_ns;
}

absl::Status SessionsOff() {
  return absl::FailedPreconditionError(
      "sessions are off in this daemon (--sessions-max=0): send the write without a session");
}

}  // namespace

layout::SessionSlot* CounterTable::session_slot(uint32_t i) const { return sessions_base_ + i; }

void CounterTable::InitSessionCache() { session_cache_.reset(new SessionCache); }

void CounterTable::ForEachUsedSession(const std::function<void(uint32_t)>& fn) const {
  if (session_directory_ == nullptr) return;
  for (uint32_t w = 0; w < kSessionSlots / 64; ++w) {
    uint64_t bits = session_directory_->used[w].load(std::memory_order_acquire);
    while (bits != 0) {
      fn(w * 64 + static_cast<uint32_t>(std::countr_zero(bits)));
      bits &= bits - 1;
    }
  }
}

void CounterTable::MarkSessionUsed(uint32_t i) const {
  session_directory_->used[i / 64].fetch_or(uint64_t{1} << (i % 64), std::memory_order_acq_rel);
}

void CounterTable::ConfigureSessions(uint32_t max, absl::Duration ttl) {
  sessions_max_ = static_cast<uint32_t>(std::min<uint64_t>(max, kSessionSlots));
  session_ttl_ns_ = absl::ToInt64Nanoseconds(ttl);
}

uint32_t CounterTable::SessionsLive() const {
  if (session_directory_ == nullptr) return 0;
  return session_directory_->live.load(std::memory_order_relaxed);
}

void CounterTable::CopySessionIfPending(uint32_t i, uint32_t epoch) const {
  SessionSlot* s = session_slot(i);
  if (s->copied_epoch == epoch) return;
  SessionSlot* staged = staged_session(i);
  if (s->dirty.load(std::memory_order_relaxed) != 0) {
    // The lock and the snapshot's bookkeeping are not copied: only what a
    // snapshot reads (invariant 3's fields).
    staged->state.store(s->state.load(std::memory_order_relaxed), std::memory_order_relaxed);
    if (s->state.load(std::memory_order_relaxed) == layout::kSessionLive) {
      std::memcpy(staged->id, s->id, sizeof s->id);
      staged->last_write_unix_ns.store(s->last_write_unix_ns.load(std::memory_order_relaxed),
                                       std::memory_order_relaxed);
      staged->highest = s->highest;
      staged->values_end = s->values_end;
      std::memcpy(staged->entries, s->entries, sizeof s->entries);
      std::memcpy(staged->values, s->values, sizeof s->values);
    }
  }
  // Published after the copy, as a region's (snapshot_staging.cc, step 5).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s->copied_epoch = epoch;
  s->dirty.store(0, std::memory_order_relaxed);
}

void CounterTable::PrepareSessionChange(uint32_t i, uint32_t epoch) const {
  CopySessionIfPending(i, epoch);
  SessionSlot* s = session_slot(i);
  if (s->dirty.load(std::memory_order_relaxed) == 0) {
    s->dirty.store(ChangeStamp(), std::memory_order_relaxed);
  }
}

absl::StatusOr<uint32_t> CounterTable::LockSession(const SessionWrite& w) {
  if (attach_token_ != 0) {
    return absl::UnavailableError("sessions are the daemon's: an attached process has none");
  }
  if (sessions_base_ == nullptr || sessions_max_ == 0) return SessionsOff();
  const int32_t me = Holder();
  const int64_t now = UnixNanos();
  SessionCache::Id id;  // no allocation per write
  std::memcpy(id.data(), w.id.data(), kSessionIdBytes);
  // Forgets the session in slot i (held): expired, or its place taken.
  auto forget = [&](uint32_t i) {
    SessionSlot* s = session_slot(i);
    PrepareSessionChange(i, header_->snapshot_epoch.load(std::memory_order_acquire));
    s->state.store(layout::kSessionFree, std::memory_order_relaxed);
    session_directory_->live.fetch_sub(1, std::memory_order_relaxed);
  };
  {
    std::lock_guard<std::mutex> lock(session_cache_->mu);
    auto it = session_cache_->slot_of.find(id);
    if (it != session_cache_->slot_of.end()) {
      const uint32_t i = it->second;
      SessionSlot* s = session_slot(i);
      StripeLock(&s->lock, me);
      if (s->state.load(std::memory_order_relaxed) == layout::kSessionLive &&
          std::memcmp(s->id, id.data(), kSessionIdBytes) == 0) {
        if (!Expired(*s, now, session_ttl_ns_)) return i;
        forget(i);
      }
      StripeUnlock(&s->lock, me);
      session_cache_->slot_of.erase(it);
    }
  }
  // The directory: find the session, or start it.
  SessionDirectory* dir = session_directory_;
  StripeLock(&dir->lock, me);
  uint32_t found = kSessionSlots, free_slot = kSessionSlots, oldest = kSessionSlots;
  int64_t oldest_write = 0;
  std::vector<bool> used(kSessionSlots, false);
  ForEachUsedSession([&](uint32_t i) {
    used[i] = true;
    const SessionSlot* s = session_slot(i);
    if (found != kSessionSlots) return;
    if (s->state.load(std::memory_order_relaxed) != layout::kSessionLive) {
      if (free_slot == kSessionSlots) free_slot = i;
      return;
    }
    if (std::memcmp(s->id, id.data(), kSessionIdBytes) == 0) {
      found = i;
      return;
    }
    const int64_t t = s->last_write_unix_ns.load(std::memory_order_relaxed);
    if (oldest == kSessionSlots || t < oldest_write) {
      oldest = i;
      oldest_write = t;
    }
  });
  // A place never used: its pages were never touched.
  if (free_slot == kSessionSlots) {
    for (uint32_t i = 0; i < kSessionSlots; ++i) {
      if (!used[i]) {
        free_slot = i;
        break;
      }
    }
  }
  if (found != kSessionSlots) {
    SessionSlot* s = session_slot(found);
    StripeLock(&s->lock, me);
    // Ids and the free -> live change are the directory's (invariant 2),
    // but a live one may have been forgotten since the scan.
    if (s->state.load(std::memory_order_relaxed) == layout::kSessionLive) {
      if (!Expired(*s, now, session_ttl_ns_)) {
        StripeUnlock(&dir->lock, me);
        std::lock_guard<std::mutex> lock(session_cache_->mu);
        if (session_cache_->slot_of.size() >= kSessionSlots) session_cache_->slot_of.clear();
        session_cache_->slot_of[id] = found;
        return found;
      }
      forget(found);
    }
    StripeUnlock(&s->lock, me);
    if (free_slot == kSessionSlots) free_slot = found;
  }
  if (w.sequence > kSessionWindow) {
    StripeUnlock(&dir->lock, me);
    return UnknownSessionError(w.sequence);
  }
  uint32_t i = free_slot;
  // Every place is taken (or --sessions-max was lowered since these
  // sessions were made): the least recently written sessions give their
  // places (an expired one is the least recent of all) until the new one
  // fits under the limit; it takes the last place freed.
  while ((i == kSessionSlots || dir->live.load(std::memory_order_relaxed) >= sessions_max_) &&
         oldest != kSessionSlots) {
    SessionSlot* o = session_slot(oldest);
    StripeLock(&o->lock, me);
    if (o->state.load(std::memory_order_relaxed) == layout::kSessionLive) forget(oldest);
    StripeUnlock(&o->lock, me);
    i = oldest;
    oldest = kSessionSlots;
    ForEachUsedSession([&](uint32_t k) {
      const SessionSlot* l = session_slot(k);
      if (l->state.load(std::memory_order_relaxed) != layout::kSessionLive) return;
      const int64_t t = l->last_write_unix_ns.load(std::memory_order_relaxed);
      if (oldest == kSessionSlots || t < oldest_write) {
        oldest = k;
        oldest_write = t;
      }
    });
  }
  if (i == kSessionSlots) {  // --sessions-max places, none live: cannot happen but for a bad count
    StripeUnlock(&dir->lock, me);
    return absl::InternalError("no session place found although fewer than --sessions-max live");
  }
  SessionSlot* s = session_slot(i);
  MarkSessionUsed(i);  // before its lock (SessionDirectory invariant 2)
  StripeLock(&s->lock, me);
  if (s->state.load(std::memory_order_relaxed) == layout::kSessionLive) forget(i);
  PrepareSessionChange(i, header_->snapshot_epoch.load(std::memory_order_acquire));
  for (SessionEntry& e : s->entries) e.sequence = 0;
  s->highest = 0;
  std::memcpy(s->id, id.data(), kSessionIdBytes);
  s->last_write_unix_ns.store(now, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s->state.store(layout::kSessionLive, std::memory_order_relaxed);
  dir->live.fetch_add(1, std::memory_order_relaxed);
  StripeUnlock(&dir->lock, me);
  std::lock_guard<std::mutex> lock(session_cache_->mu);
  if (session_cache_->slot_of.size() >= kSessionSlots) session_cache_->slot_of.clear();
  session_cache_->slot_of[id] = i;
  return i;
}

absl::StatusOr<CounterTable::SessionHold> CounterTable::BeginSessionWrite(
    const SessionWrite& w, std::optional<WriteResponse>* duplicate) {
  if (w.id.size() != kSessionIdBytes || w.sequence == 0) {
    return absl::InvalidArgumentError(absl::StrCat("a session is ", kSessionIdBytes,
                                                   " bytes and a sequence from 1; got ",
                                                   w.id.size(), " bytes, sequence ", w.sequence));
  }
  ASSIGN_OR_RETURN(const uint32_t i, LockSession(w));
  SessionHold hold{i, w.sequence, w.fingerprint};
  const SessionSlot* s = session_slot(i);
  const SessionEntry& e = s->entries[w.sequence % kSessionWindow];
  absl::Status refusal;
  if (e.sequence == w.sequence) {
    if (e.fingerprint != w.fingerprint) {
      refusal = absl::InvalidArgumentError(
          absl::StrCat("sequence ", w.sequence,
                       " of this session was used for another request (other keys, values or "
                       "method); a retry must resend the same request, a new write takes a new "
                       "sequence"));
    } else if (!EntryValuesKept(*s, e)) {
      refusal = ForgottenSequenceError(w.sequence, s->highest);
    } else {
      *duplicate = ResponseOf(*s, e);
    }
  } else if (w.sequence + kSessionWindow <= s->highest) {
    refusal = ForgottenSequenceError(w.sequence, s->highest);
  }
  if (!refusal.ok() || duplicate->has_value()) {
    EndSessionWrite(hold);
    if (!refusal.ok()) return refusal;
  }
  return hold;
}

void CounterTable::EndSessionWrite(const SessionHold& hold) const {
  StripeUnlock(&session_slot(hold.slot)->lock, Holder());
}

void CounterTable::RecordSessionEntry(BatchJournal* j, const SessionHold& hold,
                                      absl::Span<const int64_t> values, bool flag) const {
  SessionSlot* s = session_slot(hold.slot);
  const uint32_t index = static_cast<uint32_t>(hold.sequence % kSessionWindow);
  SessionEntry& e = s->entries[index];
  // The undo first (BatchJournal invariant 5).
  j->session_entry = index;
  j->session_old_entry = e;
  j->session_old_highest = s->highest;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  j->session = hold.slot + 1;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  const uint64_t at = s->values_end;
  for (size_t k = 0; k < values.size(); ++k) {
    s->values[(at + k) % kSessionResponseValues] = values[k];
  }
  s->values_end = at + values.size();
  e.values_at = at;
  e.count = static_cast<uint32_t>(values.size());
  e.flag = flag ? 1 : 0;
  e.fingerprint = hold.fingerprint;
  e.sequence = hold.sequence;
  s->highest = std::max(s->highest, hold.sequence);
  s->last_write_unix_ns.store(UnixNanos(), std::memory_order_relaxed);
  RunHook(table_internal::kSessionEntryHookKey);
}

void CounterTable::UndoSessionEntry(BatchJournal* j) {
  if (j->session == 0) return;
  if (sessions_base_ != nullptr && j->session <= kSessionSlots &&
      j->session_entry < kSessionWindow) {
    SessionSlot* s = session_slot(j->session - 1);
    s->entries[j->session_entry] = j->session_old_entry;
    s->highest = j->session_old_highest;
  }
  j->session = 0;
}

absl::Status CounterTable::RestoreSession(const SessionRecord& rec) {
  if (sessions_base_ == nullptr || rec.id.size() != kSessionIdBytes) {
    return absl::InvalidArgumentError("a session record is 16 bytes of id");
  }
  SessionDirectory* dir = session_directory_;
  const uint32_t live = dir->live.load(std::memory_order_relaxed);
  if (live >= kSessionSlots) {
    return absl::FailedPreconditionError("every session place is taken");
  }
  SessionSlot* s = session_slot(live);  // restored into an empty table: slots fill in order
  MarkSessionUsed(live);
  std::memset(static_cast<void*>(s->entries), 0, sizeof s->entries);
  uint64_t end = 0;
  for (const SessionRecord::Entry& re : rec.entries) {
    if (re.values.empty() || re.values.size() > kSessionResponseValues) continue;
    SessionEntry& e = s->entries[re.sequence % kSessionWindow];
    e.sequence = re.sequence;
    e.fingerprint = re.fingerprint;
    e.flag = re.flag ? 1 : 0;
    e.count = static_cast<uint32_t>(re.values.size());
    e.values_at = end;
    for (size_t k = 0; k < re.values.size(); ++k) {
      s->values[(end + k) % kSessionResponseValues] = re.values[k];
    }
    end += re.values.size();
  }
  // Entries whose values the later ones overwrote are not kept (the
  // record held at most the values a session keeps, so none is lost).
  s->values_end = end;
  s->highest = rec.highest;
  std::memcpy(s->id, rec.id.data(), kSessionIdBytes);
  s->last_write_unix_ns.store(rec.last_write_unix_ns, std::memory_order_relaxed);
  s->dirty.store(ChangeStamp(), std::memory_order_relaxed);
  s->state.store(layout::kSessionLive, std::memory_order_relaxed);
  dir->live.store(live + 1, std::memory_order_relaxed);
  return absl::OkStatus();
}

void CounterTable::RestoreSessionEntry(const std::string& id, const SessionRecord::Entry& entry) {
  if (sessions_base_ == nullptr || id.size() != kSessionIdBytes || entry.values.empty() ||
      entry.values.size() > kSessionResponseValues || entry.sequence == 0) {
    return;
  }
  uint32_t found = kSessionSlots;
  ForEachUsedSession([&](uint32_t i) {
    const SessionSlot* s = session_slot(i);
    if (found == kSessionSlots && s->state.load() == layout::kSessionLive &&
        std::memcmp(s->id, id.data(), kSessionIdBytes) == 0) {
      found = i;
    }
  });
  if (found == kSessionSlots) {
    SessionRecord rec;
    rec.id = id;
    rec.last_write_unix_ns = UnixNanos();
    rec.highest = entry.sequence;
    rec.entries.push_back(entry);
    (void)RestoreSession(rec);  // every place taken: the entry is not kept
    return;
  }
  SessionSlot* s = session_slot(found);
  SessionEntry& e = s->entries[entry.sequence % kSessionWindow];
  // Held already (the snapshot had it), or older than the window.
  if (e.sequence == entry.sequence || entry.sequence + kSessionWindow <= s->highest) return;
  const uint64_t at = s->values_end;
  for (size_t k = 0; k < entry.values.size(); ++k) {
    s->values[(at + k) % kSessionResponseValues] = entry.values[k];
  }
  s->values_end = at + entry.values.size();
  e = SessionEntry{entry.sequence, entry.fingerprint, at,
                   static_cast<uint32_t>(entry.values.size()), entry.flag ? 1u : 0u};
  s->highest = std::max(s->highest, entry.sequence);
  s->dirty.store(ChangeStamp(), std::memory_order_relaxed);
}

void CounterTable::RepairSessionsAtOpen() {
  if (sessions_base_ == nullptr) return;
  StripeLockInit(&session_directory_->lock);
  uint32_t live = 0;
  ForEachUsedSession([&](uint32_t i) {
    SessionSlot* s = session_slot(i);
    StripeLockInit(&s->lock);
    s->copied_epoch = 0;
    if (s->state.load() == layout::kSessionLive) {
      ++live;
    } else {
      // Free and unlocked: its bit may go (nobody else runs yet).
      session_directory_->used[i / 64].fetch_and(~(uint64_t{1} << (i % 64)));
    }
  });
  session_directory_->live.store(live);
}

int CounterTable::ReleaseSessionLocks(pid_t pid) {
  if (sessions_base_ == nullptr) return 0;
  int released = StripeForceUnlock(&session_directory_->lock, pid) ? 1 : 0;
  ForEachUsedSession([&](uint32_t i) {
    if (StripeForceUnlock(&session_slot(i)->lock, pid)) ++released;
  });
  return released;
}

}  // namespace countersd
