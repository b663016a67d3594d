// How a countersd client connects: plaintext or TLS (mTLS with a client
// certificate), to host:port, [v6]:port, unix:/path or any gRPC target.
//
//   countersd::ConnectionSecurity security{.ca_file = "/etc/countersd/ca.crt"};
//   absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
//       countersd::CreateCounterChannel("db1:50051", security);
//   if (!channel.ok()) { /* a file could not be read; the message names it */ }
//   countersd::CounterClient client(*channel);
//
// And how to tell why a call failed at the door (DescribeFailure): a TLS
// failure (UNAVAILABLE from the handshake: wrong CA, a plaintext client
// against TLS, a refused client certificate), an authentication failure
// (UNAUTHENTICATED: missing or unknown credentials) and a denial
// (PERMISSION_DENIED: a known principal beyond its role or key prefixes).
#ifndef COUNTERSD_CLIENT_CHANNEL_H_
#define COUNTERSD_CLIENT_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace countersd {

// The transport's security options (counterctl's --cacert, --cert, --key).
struct ConnectionSecurity {
  // PEM CA certificates the server's certificate must verify against. Any
  // of ca_file or cert_file turns TLS on; TLS with no ca_file verifies
  // against the system's CAs.
  std::string ca_file;
  // mTLS: the client's PEM certificate chain and its private key (both or
  // neither).
  std::string cert_file;
  std::string key_file;
  // The name the server's certificate must carry, when it is not the
  // address's host (e.g. connecting by IP to a certificate for a DNS name).
  std::string server_name;

  bool tls() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

// A channel to `address` with `security`. INVALID_ARGUMENT naming the file
// that cannot be read, or --cert without --key. Does not connect: a TLS
// failure surfaces as UNAVAILABLE from the first call.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateCounterChannel(
    const std::string& address, const ConnectionSecurity& security,
    grpc::ChannelArguments args = {});

enum class FailureKind {
  kOther,
  kTls,             // the TLS handshake failed (UNAVAILABLE naming SSL/TLS/handshake)
  kClosedAtSetUp,   // the server closed the connection before any reply: a TLS
                    // server to a plaintext client, or mTLS refusing the client's
                    // certificate (TLS 1.3 tells the client only after its side)
  kUnauthenticated, // UNAUTHENTICATED
  kDenied,          // PERMISSION_DENIED
};
// Which of the above `status` is. `tls_configured`: whether the client used
// TLS (a plaintext client whose connection a TLS server closes sees only a
// closed socket).
FailureKind ClassifyFailure(const absl::Status& status, bool tls_configured);

// One sentence for the user: what failed and what to check, then gRPC's
// message. Empty for kOther.
std::string DescribeFailure(const absl::Status& status, bool tls_configured);

}  // namespace countersd

#endif  // COUNTERSD_CLIENT_CHANNEL_H_
