#include "shared/key.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"

namespace countersd {
namespace {

// Decodes one UTF-8 sequence at key[i]; returns its length, or 0 if invalid
// (truncated, overlong, surrogate, above U+10FFFF). Stores the code point.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  size_t len;
  uint32_t min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, min = 0x80, *cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, min = 0x800, *cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, *cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (b(i + k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

absl::Status ValidateKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("key must not be empty");
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key is ", key.size(), " bytes; the limit is ", kMaxKeyBytes, " bytes"));
  }
  // Fast path: printable ASCII (0x20..0x7E), eight bytes at a time, the
  // last word overlapping. A byte below 0x20, 0x7F, or one with its high bit
  // set sends the key to the full UTF-8 check below.
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const auto printable_ascii = [&](uint64_t w) {
    uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
    uint64_t del_or_high = ((w + kOnes) | w) & kHigh;
    return (below_space | del_or_high) == 0;
  };
  size_t i = 0;
  if (key.size() >= 8) {
    bool ascii = true;
    uint64_t w;
    for (size_t j = 0; j + 8 <= key.size() && ascii; j += 8) {
      std::memcpy(&w, key.data() + j, 8);
      ascii = printable_ascii(w);
    }
    std::memcpy(&w, key.data() + key.size() - 8, 8);
    if (ascii && printable_ascii(w)) return absl::OkStatus();
  }
  while (i < key.size()) {
    uint32_t cp;
    size_t n = DecodeUtf8(key, i, &cp);
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("key must be valid UTF-8 (invalid byte sequence at offset ", i, ")"));
    }
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      return absl::InvalidArgumentError(absl::StrCat("key must not contain control characters (U+",
                                                     absl::Hex(cp, absl::kZeroPad4), " at offset ",
                                                     i, ")"));
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status ValidateKeyAt(std::string_view key, std::string_view field, size_t i) {
  absl::Status s = ValidateKey(key);
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(Sv(field), "[", i, "]: ", s.message()));
}

}  // namespace countersd
