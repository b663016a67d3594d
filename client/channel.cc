#include "client/channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace countersd {
namespace {

absl::StatusOr<std::string> ReadPem(const char* what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "=", path, ": cannot read: ", strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateCounterChannel(
    const std::string& address, const ConnectionSecurity& security, grpc::ChannelArguments args) {
  if (!security.tls()) {
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--cert and --key go together: the client certificate and its private key");
  }
  grpc::SslCredentialsOptions ssl;
  if (!security.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("--cacert", security.ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!security.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem("--cert", security.cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("--key", security.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  if (!security.server_name.empty()) {
    args.SetSslTargetNameOverride(security.server_name);
  }
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

FailureKind ClassifyFailure(const absl::Status& status, bool tls_configured) {
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      return FailureKind::kUnauthenticated;
    case absl::StatusCode::kPermissionDenied:
      return FailureKind::kDenied;
    case absl::StatusCode::kUnavailable: {
      const std::string m = absl::AsciiStrToLower(status.message());
      if (absl::StrContains(m, "ssl") || absl::StrContains(m, "tls") ||
          absl::StrContains(m, "handshake") || absl::StrContains(m, "certificate")) {
        return FailureKind::kTls;
      }
      if (absl::StrContains(m, "socket closed")) return FailureKind::kClosedAtSetUp;
      return FailureKind::kOther;
    }
    default:
      return FailureKind::kOther;
  }
}

std::string DescribeFailure(const absl::Status& status, bool tls_configured) {
  switch (ClassifyFailure(status, tls_configured)) {
    case FailureKind::kTls:
      return absl::StrCat(
          "TLS handshake failed (check --cacert against the server's CA, the server name in "
          "its certificate, and under mTLS --cert/--key against its --tls-client-ca-file): ",
          status.message());
    case FailureKind::kClosedAtSetUp:
      return absl::StrCat(
          tls_configured
              ? "the server closed the connection during TLS set-up: under mTLS it refuses a "
                "client without a certificate from its --tls-client-ca-file (give --cert and "
                "--key): "
              : "the server closed the connection during set-up: if it serves TLS, give "
                "--cacert (and --cert/--key under mTLS): ",
          status.message());
    case FailureKind::kUnauthenticated:
      return absl::StrCat("authentication failed: the server does not know these credentials "
                          "(missing, unknown or expired): ",
                          status.message());
    case FailureKind::kDenied:
      return absl::StrCat("permission denied: the credentials are known but may not do this: ",
                          status.message());
    case FailureKind::kOther:
      break;
  }
  return "";
}

}  // namespace countersd
