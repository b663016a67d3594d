// The local calls of attached processes (local attach, shared/table_attach.cc)
// as GetStats and /metrics name them: each has the semantics of an RPC
// method and takes its name. gRPC-free.
#ifndef COUNTERSD_SERVER_LOCAL_CALLS_H_
#define COUNTERSD_SERVER_LOCAL_CALLS_H_

#include <iterator>

#include "server/auth_policy.h"
#include "shared/counter_table.h"

namespace countersd {

// The method of each count of AttacherStats::calls and
// AttachCallTotals::calls, in their order (layout::AttachOp).
inline constexpr RpcMethod kLocalCallMethods[] = {
    RpcMethod::kIncrement, RpcMethod::kIncrementBatch, RpcMethod::kGet,   RpcMethod::kBatchGet,
    RpcMethod::kSet,       RpcMethod::kCompareAndSet,  RpcMethod::kDelete};
inline constexpr int kLocalCallKinds = std::size(kLocalCallMethods);
static_assert(std::size(AttacherStats{}.calls) == kLocalCallKinds &&
                  std::size(AttachCallTotals{}.calls) == kLocalCallKinds,
              "a method for every count of an attach slot");

}  // namespace countersd

#endif  // COUNTERSD_SERVER_LOCAL_CALLS_H_
