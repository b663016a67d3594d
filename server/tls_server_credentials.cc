#include "server/tls_server_credentials.h"

#include <algorithm>

#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace countersd {

std::shared_ptr<grpc::ServerCredentials> MakeTlsServerCredentials(const HandlerListen& listen) {
  namespace exp = grpc::experimental;
  const unsigned int interval = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(listen.tls_reload_interval)));
  const bool mtls = !listen.tls_ca_path.empty();
  auto provider =
      mtls ? std::make_shared<exp::FileWatcherCertificateProvider>(
                 listen.tls_key_path, listen.tls_cert_path, listen.tls_ca_path, interval)
           : std::make_shared<exp::FileWatcherCertificateProvider>(listen.tls_key_path,
                                                                   listen.tls_cert_path, interval);
  exp::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mtls) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace countersd
