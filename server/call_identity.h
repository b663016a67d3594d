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
#include "server/auth_policy.h"

namespace countersd {

CallIdentity CallIdentityOf(const grpc::ServerContext& ctx);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CALL_IDENTITY_H_
