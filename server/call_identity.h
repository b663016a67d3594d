// Who a gRPC call is, as the auth policy sees it (auth_policy.h's
// CallIdentity), read from its grpc::ServerContext:
//  - `authorization: Bearer <token>` metadata (the scheme's case ignored;
//    any other value is malformed_authorization, refused, never guessed at);
//  - the verified client certificate's names, from the call's auth context
//    (only when gRPC marks the peer authenticated, i.e. mTLS verified it):
//    every SAN (GRPC_X509_SAN_PROPERTY_NAME) and the subject CN
//    (GRPC_X509_CN_PROPERTY_NAME);
//  - the unix-socket peer uid, from the source set with SetPeerUidSource.
#ifndef COUNTERSD_SERVER_CALL_IDENTITY_H_
#define COUNTERSD_SERVER_CALL_IDENTITY_H_

#include <sys/types.h>

#include <optional>
#include <string_view>

#include "grpcpp/server_context.h"
#include "server/auth_policy.h"

namespace countersd {

CallIdentity CallIdentityOf(const grpc::ServerContext& ctx);

// Where a call's unix peer uid comes from: given the call's
// grpc::ServerContext::peer(), the uid of a unix-socket peer, else nullopt.
// Unset (the default): calls have no uid. The unix listener's
// peer-credential table (server/peer_credentials.h, UnixPeerUid, on the
// transport branch) is the source: the handler sets it at start once both
// are merged. Set it before serving; not synchronised with calls.
using PeerUidSource = std::optional<uid_t> (*)(std::string_view peer);
void SetPeerUidSource(PeerUidSource source);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CALL_IDENTITY_H_
