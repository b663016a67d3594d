// JSON string literals, for the JSON log lines and counterctl's JSON output.
#ifndef COUNTERSD_SHARED_JSON_H_
#define COUNTERSD_SHARED_JSON_H_

#include <string>
#include <string_view>

namespace countersd {

// Appends `s` as a JSON string literal (with the quotes) to `out`: '"', '\\'
// and control characters (and DEL) are escaped; other bytes, UTF-8 included,
// are copied as they are.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_JSON_H_
