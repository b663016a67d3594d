// Fixed-width little-endian encoding (leveldb's util/coding.h is the model),
// for every byte of a file that leaves this host: the snapshot file is a
// backup format, copied between hosts, so its integers are encoded here and
// never copied out of a struct in host order. (The live map is host-native:
// see layout.h.) The key hash reads its input through these too, so a key's
// hash is the same on every host.
//
// memcpy + a byte swap on big-endian hosts: on x86 and arm64 each compiles
// to one unaligned load or store.
#ifndef COUNTERSD_SHARED_CODING_H_
#define COUNTERSD_SHARED_CODING_H_

#include <bit>
#include <cstdint>
#include <cstring>

namespace countersd {

namespace coding_internal {
inline constexpr bool kBigEndian = std::endian::native == std::endian::big;
static_assert(std::endian::native == std::endian::little || kBigEndian,
              "mixed-endian hosts are not supported");
}  // namespace coding_internal

inline void EncodeFixed16(char* dst, uint16_t v) {
  if constexpr (coding_internal::kBigEndian) v = __builtin_bswap16(v);
  std::memcpy(dst, &v, sizeof v);
}
inline void EncodeFixed32(char* dst, uint32_t v) {
  if constexpr (coding_internal::kBigEndian) v = __builtin_bswap32(v);
  std::memcpy(dst, &v, sizeof v);
}
inline void EncodeFixed64(char* dst, uint64_t v) {
  if constexpr (coding_internal::kBigEndian) v = __builtin_bswap64(v);
  std::memcpy(dst, &v, sizeof v);
}

inline uint16_t DecodeFixed16(const char* src) {
  uint16_t v;
  std::memcpy(&v, src, sizeof v);
  if constexpr (coding_internal::kBigEndian) v = __builtin_bswap16(v);
  return v;
}
inline uint32_t DecodeFixed32(const char* src) {
  uint32_t v;
  std::memcpy(&v, src, sizeof v);
  if constexpr (coding_internal::kBigEndian) v = __builtin_bswap32(v);
  return v;
}
inline uint64_t DecodeFixed64(const char* src) {
  uint64_t v;
  std::memcpy(&v, src, sizeof v);
  if constexpr (coding_internal::kBigEndian) v = __builtin_bswap64(v);
  return v;
}

}  // namespace countersd

#endif  // COUNTERSD_SHARED_CODING_H_
