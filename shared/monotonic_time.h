// The clock every interval, timeout and schedule of the daemon and its
// client is measured on: CLOCK_MONOTONIC, never the wall clock.
//
// Why: the wall clock steps. NTP's first sync, an operator's `date -s`, a
// VM resumed from a pause or migrated: CLOCK_REALTIME jumps by seconds or
// hours. A schedule kept on it (`next = absl::Now() + interval`) then fires
// everything at once after a step forward, and nothing for the length of a
// step back: no periodic snapshot, no respawn of a crashed handler, no
// handshake timeout for an hour. absl::Now() is worse still for deadlines
// handed to gRPC: it is interpolated from the CPU's cycle counter and
// follows a kernel step only at its next resync, so for up to a second after
// one it disagrees with the clock gRPC reads, and a 10 s deadline computed
// from it can already be in the past (a CI run saw 203 calls fail at once
// with DEADLINE_EXCEEDED).
//
// MonotonicNow() is CLOCK_MONOTONIC as an absl::Time, so that the code keeps
// absl's Time and Duration arithmetic. Such a Time is only ever compared with
// another MonotonicNow() value or subtracted from one: it is not a date, and
// is never formatted, logged or mixed with absl::Now() (which stays for what
// is shown to people: log timestamps, file names, the unix time a snapshot
// was taken). The epoch is the host's boot, so a value means nothing in
// another host, and nothing in the map file stores one (the map's own stamps
// are CLOCK_MONOTONIC_COARSE: shared/control.h). Deadlines for gRPC are made
// from a duration on gRPC's own monotonic clock: proto/grpc_deadline.h.
#ifndef COUNTERSD_SHARED_MONOTONIC_TIME_H_
#define COUNTERSD_SHARED_MONOTONIC_TIME_H_

#include <time.h>

#include "absl/time/time.h"

namespace countersd {

inline absl::Time MonotonicNow() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

}  // namespace countersd

#endif  // COUNTERSD_SHARED_MONOTONIC_TIME_H_
