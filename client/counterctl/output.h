// Rendering for counterctl: a minimal streaming JSON writer and aligned text
// columns. Data goes to stdout, messages to stderr (see cli.h).
#ifndef COUNTERSD_CLIENT_COUNTERCTL_OUTPUT_H_
#define COUNTERSD_CLIENT_COUNTERCTL_OUTPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "shared/json.h"

namespace countersd::ctl {

// Builds one compact JSON document. Callers nest Begin/End calls correctly;
// commas are inserted automatically. Strings are escaped per RFC 8259 (the
// input is assumed to be UTF-8 and passed through; control characters are
// written as \u00XX). Integers are written exactly, as JSON numbers.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The name of the next member of the current object.
  JsonWriter& Key(absl::string_view name);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  // Finite doubles in fixed notation with at most 3 decimals (exponent
  // notation from 1e15); NaN and infinities become null.
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // Shorthands for Key(name) followed by a value.
  JsonWriter& Field(absl::string_view name, absl::string_view value) {
    return Key(name).String(value);
  }
  JsonWriter& Field(absl::string_view name, const char* value) { return Key(name).String(value); }
  JsonWriter& Field(absl::string_view name, int64_t value) { return Key(name).Int(value); }
  JsonWriter& Field(absl::string_view name, uint64_t value) { return Key(name).Uint(value); }
  JsonWriter& Field(absl::string_view name, int value) { return Key(name).Int(value); }
  JsonWriter& Field(absl::string_view name, bool value) { return Key(name).Bool(value); }
  JsonWriter& Field(absl::string_view name, double value) { return Key(name).Double(value); }

  // The document so far (complete once every Begin has its End).
  const std::string& str() const { return out_; }

 private:
  void BeforeValue();
  std::string out_;
  // One entry per open container: true once it holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

// Rows of cells rendered as aligned columns separated by two spaces.
// Columns listed in `right_aligned` are padded on the left (numbers).
// Widths count bytes, except that UTF-8 continuation bytes are not counted.
std::string FormatColumns(const std::vector<std::vector<std::string>>& rows,
                          const std::vector<bool>& right_aligned = {});

// "1234567" -> "1,234,567" (for human-readable counts).
std::string WithThousands(uint64_t n);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_OUTPUT_H_
