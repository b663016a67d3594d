// Which method a CounterService request is and which keys it touches, for
// the access checks (access_control.h): every key of a request is checked
// before the request is handled, so a batch with one key out of scope is
// refused whole and nothing of it is applied. Proto types, no gRPC.
#ifndef COUNTERSD_SERVER_REQUEST_AUTHORIZATION_H_
#define COUNTERSD_SERVER_REQUEST_AUTHORIZATION_H_

#include "absl/status/status.h"
#include "counters/v1/counters.pb.h"
#include "server/access_control.h"

namespace countersd {

// The method each request type belongs to.
template <typename Request>
struct RpcMethodOf;
#define COUNTERSD_RPC_METHOD_OF(Request, method)                  \
  template <>                                                      \
  struct RpcMethodOf<counters::v1::Request> {                      \
    static constexpr RpcMethod kMethod = RpcMethod::method;        \
  }
COUNTERSD_RPC_METHOD_OF(IncrementRequest, kIncrement);
COUNTERSD_RPC_METHOD_OF(IncrementBatchRequest, kIncrementBatch);
COUNTERSD_RPC_METHOD_OF(GetRequest, kGet);
COUNTERSD_RPC_METHOD_OF(BatchGetRequest, kBatchGet);
COUNTERSD_RPC_METHOD_OF(ListRequest, kList);
COUNTERSD_RPC_METHOD_OF(SetRequest, kSet);
COUNTERSD_RPC_METHOD_OF(CompareAndSetRequest, kCompareAndSet);
COUNTERSD_RPC_METHOD_OF(DeleteRequest, kDelete);
COUNTERSD_RPC_METHOD_OF(SnapshotRequest, kSnapshot);
COUNTERSD_RPC_METHOD_OF(GetStatsRequest, kGetStats);
COUNTERSD_RPC_METHOD_OF(IncrementStreamRequest, kIncrementStream);
#undef COUNTERSD_RPC_METHOD_OF

// OK if every key of the request is in the admitted principal's scope;
// else PERMISSION_DENIED naming the first key outside it (logged). List's
// scope is AccessControl::ListRanges.
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::IncrementRequest& req);
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::IncrementBatchRequest& req);
// One message of an IncrementStream.
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::IncrementStreamRequest& req);
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::GetRequest& req);
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::BatchGetRequest& req);
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::SetRequest& req);
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::CompareAndSetRequest& req);
absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const counters::v1::DeleteRequest& req);
// No keys: the role decides.
inline absl::Status AuthorizeKeys(AccessControl&, const AccessControl::Admission&,
                                  const counters::v1::GetStatsRequest&) {
  return absl::OkStatus();
}
inline absl::Status AuthorizeKeys(AccessControl&, const AccessControl::Admission&,
                                  const counters::v1::SnapshotRequest&) {
  return absl::OkStatus();
}

}  // namespace countersd

#endif  // COUNTERSD_SERVER_REQUEST_AUTHORIZATION_H_
