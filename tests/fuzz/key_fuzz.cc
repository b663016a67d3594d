// Fuzz target: key validation (shared/key.h). ValidateKey has a word-at-a-
// time ASCII fast path and a UTF-8 decoder; both must agree with the rule
// as written (1..kMaxKeyBytes bytes of UTF-8, no overlongs or surrogates,
// no code point in U+0000..U+001F or U+007F..U+009F). The oracle below is a
// plain, byte-at-a-time statement of that rule. A valid key must also hash
// and compare stably (key_hash.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "shared/key.h"
#include "shared/key_hash.h"

namespace {

bool OracleValid(std::string_view k) {
  if (k.empty() || k.size() > countersd::kMaxKeyBytes) return false;
  for (size_t i = 0; i < k.size();) {
    const uint8_t c = static_cast<uint8_t>(k[i]);
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                          : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || i + len > k.size()) return false;
    uint32_t cp = len == 1 ? c : c & (0xFF >> (len + 1));
    for (size_t j = 1; j < len; ++j) {
      const uint8_t t = static_cast<uint8_t>(k[i + j]);
      if ((t & 0xC0) != 0x80) return false;
      cp = cp << 6 | (t & 0x3F);
    }
    const uint32_t min = len == 1 ? 0 : len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return false;
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view key(reinterpret_cast<const char*>(data), size);
  const bool valid = countersd::ValidateKey(key).ok();
  if (valid != OracleValid(key)) std::abort();  // the two statements of the rule disagree
  if (valid && countersd::HashKey(key) != countersd::HashKey(std::string_view(key))) std::abort();
  return 0;
}
