// Cross-process coordination words that live in the map file's header:
// how a handler asks the aggregator for a snapshot and waits for it.
//
// Protocol (the words are futexes, shared across processes):
//   requester:  my = ++request_seq; FutexWake(request_seq);
//               wait until (int32)(done_seq - my) >= 0, then read the result.
//   aggregator: s = request_seq; take a snapshot that starts after reading s;
//               publish the result fields; done_seq = s; FutexWakeAll(done_seq).
// A request that arrives while a snapshot is being taken has a larger seq,
// so it is served by the next snapshot, never by one that started earlier.
#ifndef COUNTERSD_SHARED_CONTROL_H_
#define COUNTERSD_SHARED_CONTROL_H_

#include <time.h>

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace countersd {

// Lives in the map file's header. Invariants:
//  1. request_seq is only incremented, by requesters (handlers' Snapshot
//     calls).
//  2. Every other field is written only by the snapshot writer (in the
//     aggregator), the result fields before done_seq (release); a reader
//     that saw done_seq (acquire) reads the result of that snapshot.
//  3. Open resets request_seq, done_seq, last_failed, failures,
//     consecutive_failures and undurable_since (ResetAtOpen); the result of
//     the last snapshot stays until the next one replaces it.
//  4. Durability lag. A region's `dirty` word (layout.h) holds the
//     ChangeStamp of the first change since the region was last copied for
//     a snapshot (0: none). Before it starts a snapshot (bumps the epoch,
//     which copies and clears the regions), the writer stores in
//     undurable_since the oldest of its old value and every region's
//     stamp; once that snapshot is durable it stores 0, and on a failure
//     it leaves it. So every change that is in no durable snapshot has a
//     stamp >= the oldest nonzero of undurable_since and the regions'
//     stamps (DurabilityLag), whatever the writer does: a writer that
//     fails, dies or is stopped leaves the old stamps in place. Readers
//     load the regions before undurable_since (acquire).
struct SnapshotControl {
  std::atomic<uint32_t> request_seq;  // bumped by requesters
  std::atomic<uint32_t> done_seq;     // request_seq value the last result serves
  std::atomic<uint64_t> generation;   // of the last durable snapshot (0: none)
  std::atomic<int64_t> unix_ns;       // when it became durable
  std::atomic<uint64_t> counters;
  std::atomic<uint64_t> bytes;
  std::atomic<uint64_t> micros;        // time to take and sync it
  std::atomic<uint64_t> max_pause_ns;  // longest stop of increments it caused
  std::atomic<uint32_t> last_failed;   // 1 if the last attempt failed
  std::atomic<uint32_t> pad;
  std::atomic<uint64_t> failures;  // failed attempts since the file was opened
  // Failed attempts since the last durable snapshot (0 after a success).
  std::atomic<uint64_t> consecutive_failures;
  // The oldest ChangeStamp the snapshots attempted since the last durable
  // one were to make durable (0: none); invariant 4.
  std::atomic<uint32_t> undurable_since;
  std::atomic<uint32_t> pad2;
  // The log floor of the last durable snapshot (WalMarks::floor,
  // write_ahead_log.h): the handlers' segments at or below it may go.
  // Stored by the writer after `generation`'s snapshot is durable.
  std::atomic<uint64_t> wal_floor;
};

// Invariant 3: what a new owner resets when it opens the table.
void ResetAtOpen(SnapshotControl& control);

// A change stamp: the second of CLOCK_MONOTONIC_COARSE (one clock for every
// process on the host) when a change was made, plus 1, so that 0 means "no
// change". Cheap (vDSO); writers take one only when a clean region becomes
// dirty.
inline uint32_t ChangeStamp() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint32_t>(ts.tv_sec) + 1;
}
// How long ago `stamp` (nonzero) was taken, to the second.
inline absl::Duration ChangeStampAge(uint32_t stamp) {
  const uint32_t now = ChangeStamp();
  return now > stamp ? absl::Seconds(now - stamp) : absl::ZeroDuration();
}

// Process-shared futex wait: sleeps while *word == expected, at most
// `timeout` (absl::InfiniteDuration() for no limit). Returns on a wake-up,
// a timeout, a signal or a changed word; callers re-check their condition.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, absl::Duration timeout);
// Wakes every process waiting on `word`.
void FutexWakeAll(std::atomic<uint32_t>* word);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_CONTROL_H_
