// A handler's TLS credentials, built after the fork (the supervisor creates
// no gRPC object): gRPC's FileWatcherCertificateProvider over the
// supervisor's checked copy of the TLS files (tls_staging.h), so a rotated
// certificate reaches new connections within the reload interval and open
// connections keep theirs. With a client CA, client certificates are
// required and verified (mTLS).
#ifndef COUNTERSD_SERVER_TLS_SERVER_CREDENTIALS_H_
#define COUNTERSD_SERVER_TLS_SERVER_CREDENTIALS_H_

#include <memory>

#include "grpcpp/security/server_credentials.h"
#include "server/handler_process.h"

namespace countersd {

// REQUIRES: listen.tls_key_path is not empty.
std::shared_ptr<grpc::ServerCredentials> MakeTlsServerCredentials(const HandlerListen& listen);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_TLS_SERVER_CREDENTIALS_H_
