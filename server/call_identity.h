// Who a gRPC call is, as the auth policy sees it (auth_policy.h's
// CallIdentity), read from its grpc::ServerContext:
//  - `authorization: Bearer <token>` metadata (the scheme's case ignored;
//    any other value is malformed_authorization, refused, never guessed at);
//  - the verified client certificate's names, from the call's auth context
//    (only when gRPC marks the peer authenticated, i.e. mTLS verified it):
//    every SAN (GRPC_X509_SAN_PROPERTY_NAME) and the subject CN
//    (GRPC_X509_CN_PROPERTY_NAME);
//  - the unix-socket peer uid, recorded when the connection was handed to
//    gRPC (peer_credentials.h, UnixPeerUid of ServerContext::peer()).
#ifndef COUNTERSD_SERVER_CALL_IDENTITY_H_
#define COUNTERSD_SERVER_CALL_IDENTITY_H_

#include "grpcpp/server_context.h"
#include "absl/status/statusor.h"
#include "server/access_control.h"
#include "server/auth_policy.h"

namespace countersd {

// Reads the certificate names only if `policy` has cert: principals, and
// the peer's uid only if it has uid: principals (null policy: both): the
// auth context and the peer string are made per call, the cost of a check.
CallIdentity CallIdentityOf(const grpc::ServerContext& ctx, const AuthPolicy* policy = nullptr);

// Admits the call `ctx` (null: no credentials) to `method` under the policy
// in force, its identity read for that policy.
absl::StatusOr<AccessControl::Admission> AdmitCall(AccessControl& access,
                                                   const grpc::ServerContext* ctx,
                                                   RpcMethod method);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CALL_IDENTITY_H_
