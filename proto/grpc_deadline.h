// A gRPC deadline from a duration, on gRPC's monotonic clock.
//
// grpc::ClientContext::set_deadline and Server::Shutdown take a time point.
// Given as std::chrono::system_clock (or absl::ToChronoTime(absl::Now() +
// d)), it is a wall-clock instant that gRPC converts to its monotonic clock
// when the call starts; a wall-clock step between the two readings, or
// absl::Now()'s lag behind a step (shared/monotonic_time.h), moves the
// deadline by the step. A gpr_timespec on GPR_CLOCK_MONOTONIC is taken as
// is. So every deadline countersd and its tests hand to gRPC is made here,
// from how long it may take, never from a wall-clock instant.
#ifndef COUNTERSD_PROTO_GRPC_DEADLINE_H_
#define COUNTERSD_PROTO_GRPC_DEADLINE_H_

#include <algorithm>
#include <cstdint>

#include "absl/time/time.h"
#include "grpc/support/time.h"

namespace countersd {

// `timeout` from now; an infinite one is gRPC's "no deadline".
inline gpr_timespec GrpcDeadlineAfter(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  const int64_t nanos = absl::ToInt64Nanoseconds(std::max(timeout, absl::ZeroDuration()));
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(nanos, GPR_TIMESPAN));
}

// How long until `deadline` (any gRPC clock; gRPC's "no deadline" gives an
// infinite duration), on the monotonic clock: for a server call's
// ServerContext::raw_deadline().
inline absl::Duration GrpcTimeLeft(gpr_timespec deadline) {
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) {
    return absl::InfiniteDuration();
  }
  const gpr_timespec left = gpr_time_sub(gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC),
                                         gpr_now(GPR_CLOCK_MONOTONIC));
  return absl::Seconds(left.tv_sec) + absl::Nanoseconds(left.tv_nsec);
}

}  // namespace countersd

#endif  // COUNTERSD_PROTO_GRPC_DEADLINE_H_
