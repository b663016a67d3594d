// The keys each CounterService request touches (request_authorization.h).
#include "server/request_authorization.h"

#include "absl/strings/str_cat.h"

namespace countersd {

using namespace counters::v1;  // NOLINT: the RPC message types

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const IncrementRequest& req) {
  return ac.CheckKey(a, RpcMethod::kIncrement, req.key(), "key");
}

namespace {

// Every key of a list of increments (a batch, a stream's message).
absl::Status AuthorizeIncrements(AccessControl& ac, const AccessControl::Admission& a,
                                 RpcMethod method,
                                 const google::protobuf::RepeatedPtrField<IncrementRequest>& incs) {
  for (int i = 0; i < incs.size(); ++i) {
    if (a.principal == nullptr || a.principal->InScope(incs[i].key())) continue;
    return ac.CheckKey(a, method, incs[i].key(), absl::StrCat("increments[", i, "].key"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const IncrementBatchRequest& req) {
  return AuthorizeIncrements(ac, a, RpcMethod::kIncrementBatch, req.increments());
}

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const IncrementStreamRequest& req) {
  return AuthorizeIncrements(ac, a, RpcMethod::kIncrementStream, req.increments());
}

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const GetRequest& req) {
  return ac.CheckKey(a, RpcMethod::kGet, req.key(), "key");
}

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const BatchGetRequest& req) {
  for (int i = 0; i < req.keys_size(); ++i) {
    if (a.principal == nullptr || a.principal->InScope(req.keys(i))) continue;
    return ac.CheckKey(a, RpcMethod::kBatchGet, req.keys(i), absl::StrCat("keys[", i, "]"));
  }
  return absl::OkStatus();
}

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const SetRequest& req) {
  return ac.CheckKey(a, RpcMethod::kSet, req.key(), "key");
}

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const CompareAndSetRequest& req) {
  return ac.CheckKey(a, RpcMethod::kCompareAndSet, req.key(), "key");
}

absl::Status AuthorizeKeys(AccessControl& ac, const AccessControl::Admission& a,
                           const DeleteRequest& req) {
  return ac.CheckKey(a, RpcMethod::kDelete, req.key(), "key");
}

}  // namespace countersd
