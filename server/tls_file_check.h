// Checking the TLS files before they are served: at start (a bad file is
// exit 2, naming the file and what is wrong) and at every reload
// (tls_staging.h: a bad file is logged and the last good pair kept, which
// gRPC's FileWatcherCertificateProvider does not do by itself). OpenSSL
// from Debian (libssl), no gRPC: the supervisor runs it.
//
// What is checked: each file reads; the certificate file holds at least one
// PEM certificate and nothing else that fails to parse; the key file holds
// a PEM private key, and it is the key of the first (leaf) certificate; the
// leaf is within its validity period; the client CA file holds at least one
// PEM certificate.
#ifndef COUNTERSD_SERVER_TLS_FILE_CHECK_H_
#define COUNTERSD_SERVER_TLS_FILE_CHECK_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace countersd {

struct TlsFiles {
  std::string cert_file;       // empty: TLS off
  std::string key_file;
  std::string client_ca_file;  // empty: no client certificates asked for
  bool enabled() const { return !cert_file.empty(); }
};

TlsFiles TlsFilesOf(const Config& config);

// The files' contents, as read and checked together.
struct TlsMaterial {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;  // empty without a client CA file
  friend bool operator==(const TlsMaterial&, const TlsMaterial&) = default;
};

// Reads `files` and checks them (above). TLS off: an empty TlsMaterial.
// INVALID_ARGUMENT whose message names the flag, the file and the problem,
// e.g. "--tls-key-file=/etc/x/tls.key does not match the certificate in
// --tls-cert-file=/etc/x/tls.crt".
absl::StatusOr<TlsMaterial> ReadTlsFiles(const TlsFiles& files);

// Checks contents already read (the reload path reads the files itself).
absl::Status CheckTlsMaterial(const TlsFiles& files, const TlsMaterial& material);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_TLS_FILE_CHECK_H_
