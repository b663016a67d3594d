// WriteSession: a CounterClient's exactly-once session (WriteOptions,
// counters.proto): its id, its sequences, and the window that keeps every
// write in flight inside what the daemon remembers.
//
// How it works:
//  1. The id is 16 bytes from getrandom(2) (the kernel's CSPRNG), drawn for
//     each session: unpredictable, and unique per client instance with
//     overwhelming probability (a collision needs ~2^64 sessions).
//  2. A write calls Begin before its first attempt and gets a Ticket: the
//     id and the next sequence (1, 2, 3, ...). Every attempt of that write
//     sends the Ticket's id and sequence; End is called once the write
//     returns, whatever its outcome.
//  3. The window. The daemon remembers a session's sequences within 64 of
//     the highest it applied, and their responses in a ring of 1,024
//     values (a batch of n increments uses n, any other write 1) that later
//     writes overwrite in the order applied; a retry of a write it no
//     longer remembers is refused (FAILED_PRECONDITION, "older than the
//     daemon remembers"), with its outcome unknown. Bounding the writes in
//     flight to 64 is not enough for that: with one write stuck in its
//     attempts, 64 others may finish one after the other and carry the
//     highest sequence past it. So Begin admits a write only while its
//     sequence is within 64 of the OLDEST write still in flight (the front
//     of `issued_`), as TCP's sender keeps its window from the oldest
//     unacknowledged byte, and while the response values of every write
//     from that oldest one to this one total at most kWindowResponseValues,
//     half the ring. Then, for a write W in flight:
//      - whatever the daemon applies, the highest sequence it has seen is
//        below oldest + 64 <= W + 64, so W stays in the window;
//      - what the daemon applies while W is in flight is of writes in flight
//        at the same time, all within [the oldest in flight when W began,
//        W + 63]: at most half the ring from that oldest to W (W was
//        admitted so), at most half from W on (each was admitted while W,
//        or an older one, was the oldest), so W's values are never
//        overwritten.
//     It follows that at most 64 writes of a session are in flight at once;
//     the others wait in Begin (up to their deadline) for the oldest to
//     end. A batch of more than kWindowResponseValues increments is
//     admitted only alone (nothing in flight); of more than 1,024, its
//     response can never be remembered whole, and the daemon's answer to
//     its retry is the daemon's (counters.proto). A write that gave up
//     (its deadline) while an attempt of it was still on its way is the one
//     thing the window cannot count: it may still be applied after its
//     place was freed.
//  4. A new session (Renew): the daemon forgot this one (idle past
//     --session-ttl, or its place taken under --sessions-max) and refused a
//     write's first attempt as an unknown session. Renew draws a new id and
//     starts the sequences at 1 again, once: the other writes refused for
//     the same old session find it renewed already (their Ticket's
//     generation is not the current one) and only Begin again. Writes still
//     in flight under the old session keep its id and sequence to the end;
//     the new window counts only the new session's.
//
// Thread-safety: every method may be called from any thread; one mutex.
#ifndef COUNTERSD_CLIENT_WRITE_SESSION_H_
#define COUNTERSD_CLIENT_WRITE_SESSION_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "shared/limits.h"

namespace countersd {

class Cancellation;

class WriteSession {
 public:
  // The response values of the writes in the window, from the oldest in
  // flight to the newest: half of the daemon's ring (3. above).
  static constexpr size_t kWindowResponseValues = kSessionResponseValues / 2;

  // A write's place in the session: what each of its attempts sends.
  struct Ticket {
    std::string session_id;   // kSessionIdBytes bytes
    uint64_t sequence = 0;    // 1, 2, 3, ... within the session
    uint64_t generation = 0;  // which of this WriteSession's sessions (Renew)
  };

  WriteSession();  // draws the first session's id
  WriteSession(const WriteSession&) = delete;
  WriteSession& operator=(const WriteSession&) = delete;

  // Waits until a write whose response holds `response_values` values (1,
  // or a batch's increments) fits in the window (the top of this file) and
  // returns its Ticket. DEADLINE_EXCEEDED if `deadline` (MonotonicNow's
  // clock) passes first, CANCELLED if `cancellation` (may be null) is
  // cancelled first, looked at every 20ms: either way no sequence is taken.
  absl::StatusOr<Ticket> Begin(size_t response_values, absl::Time deadline,
                               const Cancellation* cancellation);
  // The write of `ticket` returned (any outcome): frees its place. Once per
  // Ticket that Begin returned.
  void End(const Ticket& ticket);
  // The daemon refused `ticket`'s first attempt as an unknown session: if
  // `ticket` is of the current session, starts a new one (a new id,
  // sequences from 1); else someone did already. Either way `ticket` is
  // ended: do not End it as well.
  void Renew(const Ticket& ticket);

  // The current session's id, and how many writes of it are in flight.
  std::string session_id() const;
  size_t in_flight() const;

 private:
  struct Issued {
    uint64_t sequence;
    size_t response_values;
    bool ended;
  };
  bool FitsLocked(size_t response_values) const;

  mutable std::mutex mu_;
  std::condition_variable window_cv_;  // notified when the window moves
  std::string session_id_;
  uint64_t generation_ = 0;
  uint64_t next_sequence_ = 1;
  // The current session's writes from the oldest in flight to the newest
  // issued, in sequence order (ended ones stay until every older one has):
  // the front is the oldest in flight, or the deque is empty.
  std::deque<Issued> issued_;
  size_t issued_values_ = 0;  // the sum of issued_'s response_values
  size_t in_flight_ = 0;      // issued_'s entries not ended
};

}  // namespace countersd

#endif  // COUNTERSD_CLIENT_WRITE_SESSION_H_
