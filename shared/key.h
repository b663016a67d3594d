// Counter key rules, shared by the table, the server and the client.
#ifndef COUNTERSD_SHARED_KEY_H_
#define COUNTERSD_SHARED_KEY_H_

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"

namespace countersd {

// Longest key in bytes. A slot in the map file holds this many key bytes.
inline constexpr size_t kMaxKeyBytes = 160;

// OK if `key` is 1..kMaxKeyBytes bytes of valid UTF-8 (no overlongs, no
// surrogates) without control characters (U+0000..U+001F, U+007F..U+009F).
// Otherwise INVALID_ARGUMENT with a message that names the broken rule.
absl::Status ValidateKey(std::string_view key);
// ValidateKey of the i-th key of a request's repeated field, its message
// naming it: "increments[3]: key is empty". The API's one form for a bad
// key in a batch (counters.proto), for the server and the local library.
absl::Status ValidateKeyAt(std::string_view key, std::string_view field, size_t i);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_KEY_H_
