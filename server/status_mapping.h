// The one place where an absl::Status becomes a grpc::Status.
#ifndef COUNTERSD_SERVER_STATUS_MAPPING_H_
#define COUNTERSD_SERVER_STATUS_MAPPING_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace countersd {

// Same canonical code, same message. The table's codes are the API's codes
// (INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND, RESOURCE_EXHAUSTED, ...), so
// nothing is re-interpreted here; an unknown code becomes INTERNAL.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_STATUS_MAPPING_H_
