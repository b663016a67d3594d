// The one place where a status crosses the RPC edge, in both directions:
// inside the server and the client library every error is an absl::Status;
// only the gRPC calls themselves see a grpc::Status.
//
// Both types use gRPC's canonical codes with the same numbers (CANCELLED = 1
// to UNAUTHENTICATED = 16), so nothing is re-interpreted: the code and the
// message cross as they are. The table's codes are the API's codes
// (INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND, RESOURCE_EXHAUSTED, ...).
#ifndef COUNTERSD_PROTO_STATUS_CONVERSION_H_
#define COUNTERSD_PROTO_STATUS_CONVERSION_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace countersd {

// Same canonical code, same message. For the server's replies.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Same canonical code, same message (a code gRPC does not define arrives as
// UNKNOWN). For the client's results.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace countersd

#endif  // COUNTERSD_PROTO_STATUS_CONVERSION_H_
