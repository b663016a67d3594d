// Bearer tokens: how a new one is made (`counterctl token new`) and the
// SHA-256 that the auth file stores in its place (server/auth_policy.h).
// The one home of both, for the server and the client.
#ifndef COUNTERSD_SHARED_BEARER_TOKEN_H_
#define COUNTERSD_SHARED_BEARER_TOKEN_H_

#include <array>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace countersd {

// Random bytes in a new token: 256 bits.
inline constexpr size_t kTokenBytes = 32;

// A new token: kTokenBytes from the kernel's CSPRNG (OpenSSL RAND_bytes),
// base64url without padding (43 characters: no character that needs quoting
// in metadata, a shell or a file). INTERNAL if the generator fails.
absl::StatusOr<std::string> NewBearerToken();

// The SHA-256 of `token`'s bytes, and as 64 lowercase hex digits.
std::array<unsigned char, 32> TokenSha256(std::string_view token);
std::string TokenSha256Hex(std::string_view token);

// The principal field of an auth-file line for `token`: "token:sha256:<hex>".
inline constexpr std::string_view kTokenPrincipalPrefix = "token:sha256:";
std::string TokenPrincipal(std::string_view token);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_BEARER_TOKEN_H_
