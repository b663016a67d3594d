// How the key hash works
// ======================
//
// The structure of wyhash: a 64x64->128-bit multiply folded to 64 bits
// ("mum") mixes 16 bytes per step. Keys of up to 16 bytes are read as two
// words built from (possibly overlapping) 4-byte loads, so a key of 4..16
// bytes costs no byte loop; keys of 1..3 bytes use their first, middle and
// last bytes. Longer keys fold 16 bytes per multiply into a seed, and the
// last 16 bytes (overlapping the previous block) finish it. A 20-byte key
// costs three multiplies. Every load is little-endian (coding.h), so the
// hash is the same on every host; on little-endian hosts each load is one
// instruction.
#include "shared/key_hash.h"

#include <cstddef>

#include "shared/coding.h"

namespace countersd {
namespace {

// 64x64->128 multiply, folded: the mixing step of wyhash.
inline uint64_t Mum(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

}  // namespace

uint64_t HashKey(std::string_view key) {
  constexpr uint64_t kP0 = 0xa0761d6478bd642fULL, kP1 = 0xe7037ed1a0b428dbULL;
  const char* p = key.data();
  const size_t len = key.size();
  uint64_t seed = kP0, a, b;
  if (len <= 16) {
    if (len >= 4) {
      const size_t mid = (len >> 3) << 2;
      a = (uint64_t{DecodeFixed32(p)} << 32) | DecodeFixed32(p + mid);
      b = (uint64_t{DecodeFixed32(p + len - 4)} << 32) | DecodeFixed32(p + len - 4 - mid);
    } else if (len > 0) {
      a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
          (uint64_t{static_cast<uint8_t>(p[len >> 1])} << 8) | static_cast<uint8_t>(p[len - 1]);
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    size_t i = len;
    while (i > 16) {
      seed = Mum(DecodeFixed64(p) ^ kP1, DecodeFixed64(p + 8) ^ seed);
      p += 16;
      i -= 16;
    }
    a = DecodeFixed64(p + i - 16);
    b = DecodeFixed64(p + i - 8);
  }
  return Mum(kP1 ^ len, Mum(a ^ kP1, b ^ seed));
}

}  // namespace countersd
