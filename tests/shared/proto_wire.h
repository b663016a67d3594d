// Protobuf wire format by hand, for tests that send bytes the C++
// serializer would not write as they are (a non-UTF-8 string field, a
// malformed message): a varint, a length-delimited field, a varint field.
#ifndef COUNTERSD_TESTS_SHARED_PROTO_WIRE_H_
#define COUNTERSD_TESTS_SHARED_PROTO_WIRE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"

namespace countersd::testing::wire {

inline std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
// A length-delimited field (string, bytes, sub-message).
inline std::string Bytes(int field, std::string_view value) {
  return absl::StrCat(Varint(static_cast<uint64_t>(field) << 3 | 2), Varint(value.size()),
                      Sv(value));
}
// A varint field (int32, int64, bool).
inline std::string Int(int field, int64_t value) {
  return absl::StrCat(Varint(static_cast<uint64_t>(field) << 3),
                      Varint(static_cast<uint64_t>(value)));
}

}  // namespace countersd::testing::wire

#endif  // COUNTERSD_TESTS_SHARED_PROTO_WIRE_H_
