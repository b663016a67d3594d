// The key hash. It is part of the map file's format: a slot stores its
// key's hash, the hash picks the key's region (lock stripe) and its first
// probe position, and Open checks each live slot's stored hash against its
// key. Changing it changes every file: bump layout::kLayoutVersion and the
// golden values in tests/shared/key_hash_test.cc together.
#ifndef COUNTERSD_SHARED_KEY_HASH_H_
#define COUNTERSD_SHARED_KEY_HASH_H_

#include <cstdint>
#include <string_view>

namespace countersd {

// Stable 64-bit hash of `key` (any bytes, any length), the same on every
// host. Pure function; thread-safe.
uint64_t HashKey(std::string_view key);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_KEY_HASH_H_
