// Structured logging to stderr, one line per event, written with a single
// write(2) so that lines from many processes never interleave.
//
//   Log(LogLevel::kInfo, "handler exited", {{"pid", 123}, {"status", "signal 9"}});
// text: 2026-11-26T08:00:00.123Z INFO countersd[123] handler exited pid=123 status="signal 9"
// json: {"ts":"...","level":"info","pid":123,"msg":"handler exited","pid":...}
#ifndef COUNTERSD_SHARED_LOG_H_
#define COUNTERSD_SHARED_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace countersd {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// A key and its value rendered as text; numbers stay unquoted in JSON.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v), quoted(true) {}
  LogField(std::string_view k, const char* v) : key(k), value(v), quoted(true) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v), quoted(true) {}
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N>>>
  LogField(std::string_view k, N v) : key(k), value(absl::StrCat(v)), quoted(false) {}
  std::string key;
  std::string value;
  bool quoted;
};

// Process-wide settings; set once in main before forking.
void SetLogFormat(LogFormat format);
void SetLogProcessName(std::string_view name);  // e.g. "countersd/handler"
void SetLogMinLevel(LogLevel level);

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

}  // namespace countersd

#endif  // COUNTERSD_SHARED_LOG_H_
