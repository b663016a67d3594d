// Bearer tokens (bearer_token.h), with OpenSSL's libcrypto.
#include "shared/bearer_token.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace countersd {

absl::StatusOr<std::string> NewBearerToken() {
  unsigned char bytes[kTokenBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return absl::InternalError("the random generator failed (OpenSSL RAND_bytes)");
  }
  return absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

std::array<unsigned char, 32> TokenSha256(std::string_view token) {
  std::array<unsigned char, 32> md{};
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), md.data(), &len, EVP_sha256(), nullptr);
  return md;
}

std::string TokenSha256Hex(std::string_view token) {
  std::array<unsigned char, 32> md = TokenSha256(token);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md.data()), md.size()));
}

std::string TokenPrincipal(std::string_view token) {
  return absl::StrCat(absl::string_view(kTokenPrincipalPrefix.data(), kTokenPrincipalPrefix.size()), TokenSha256Hex(token));
}

}  // namespace countersd
