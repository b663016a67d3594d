// TLS file checks with OpenSSL (tls_file_check.h says what is checked).
#include "server/tls_file_check.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace countersd {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string Named(const char* flag, const std::string& path) {
  return absl::StrCat(flag, "=", path);
}

// OpenSSL's last error, as text, and clears the queue.
std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "not PEM";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

absl::StatusOr<std::string> ReadFile(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named(flag, path), ": cannot read: ", strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Bio MemBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate of `pem`; INVALID_ARGUMENT if none, or if one fails to parse.
absl::StatusOr<std::vector<Cert>> ParseCerts(const char* flag, const std::string& path,
                                             const std::string& pem) {
  std::vector<Cert> certs;
  Bio bio = MemBio(pem);
  ERR_clear_error();
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  unsigned long e = ERR_peek_last_error();
  // The loop ends with "no start line" at the end of the input; anything
  // else is a damaged certificate.
  bool at_end = ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  if (e != 0 && !at_end) {
    return absl::InvalidArgumentError(absl::StrCat(Named(flag, path),
                                                   ": a certificate in it does not parse: ",
                                                   OpenSslError()));
  }
  ERR_clear_error();
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named(flag, path), ": no PEM certificate in it (expected -----BEGIN "
                                        "CERTIFICATE-----)"));
  }
  return certs;
}

}  // namespace

TlsFiles TlsFilesOf(const Config& c) {
  return {.cert_file = c.tls_cert_file,
          .key_file = c.tls_key_file,
          .client_ca_file = c.tls_client_ca_file};
}

absl::Status CheckTlsMaterial(const TlsFiles& files, const TlsMaterial& m) {
  if (!files.enabled()) return absl::OkStatus();
  absl::StatusOr<std::vector<Cert>> chain =
      ParseCerts("--tls-cert-file", files.cert_file, m.cert_pem);
  if (!chain.ok()) return chain.status();
  Bio key_bio = MemBio(m.key_pem);
  ERR_clear_error();
  Pkey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named("--tls-key-file", files.key_file),
                     ": no PEM private key in it (unencrypted; expected -----BEGIN PRIVATE "
                     "KEY-----): ",
                     OpenSslError()));
  }
  X509* leaf = chain->front().get();
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(Named("--tls-key-file", files.key_file),
                     " does not match the certificate in ",
                     Named("--tls-cert-file", files.cert_file),
                     " (the first certificate must be the key's)"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(Named("--tls-cert-file", files.cert_file),
                                                   ": the certificate has expired"));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(Named("--tls-cert-file", files.cert_file),
                                                   ": the certificate is not valid yet"));
  }
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::vector<Cert>> cas =
        ParseCerts("--tls-client-ca-file", files.client_ca_file, m.ca_pem);
    if (!cas.ok()) return cas.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<TlsMaterial> ReadTlsFiles(const TlsFiles& files) {
  TlsMaterial m;
  if (!files.enabled()) return m;
  absl::StatusOr<std::string> cert = ReadFile("--tls-cert-file", files.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile("--tls-key-file", files.key_file);
  if (!key.ok()) return key.status();
  m.cert_pem = *std::move(cert);
  m.key_pem = *std::move(key);
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile("--tls-client-ca-file", files.client_ca_file);
    if (!ca.ok()) return ca.status();
    m.ca_pem = *std::move(ca);
  }
  if (absl::Status s = CheckTlsMaterial(files, m); !s.ok()) return s;
  return m;
}

}  // namespace countersd
