#include "shared/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "shared/json.h"

namespace countersd {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<LogLevel> g_min_level{LogLevel::kInfo};
std::string* g_name = new std::string("countersd");

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

// Text values are quoted when they hold spaces, quotes or '='.
void AppendTextValue(std::string* out, const LogField& f) {
  bool plain = !f.value.empty() && f.value.find_first_of(" \"=\t\n") == std::string::npos;
  if (!f.quoted || plain) {
    out->append(f.value);
  } else {
    absl::StrAppend(out, "\"", absl::CEscape(f.value), "\"");
  }
}

}  // namespace

void SetLogFormat(LogFormat format) { g_format.store(format); }
void SetLogProcessName(std::string_view name) { *g_name = std::string(name); }
void SetLogMinLevel(LogLevel level) { g_min_level.store(level); }

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (level < g_min_level.load(std::memory_order_relaxed)) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  if (g_format.load(std::memory_order_relaxed) == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"ts\":\"", ts, "\",\"level\":\"", LevelName(level),
                    "\",\"process\":");
    AppendJsonString(&line, *g_name);
    absl::StrAppend(&line, ",\"pid\":", getpid(), ",\"msg\":");
    AppendJsonString(&line, msg);
    for (const LogField& f : fields) {
      line.push_back(',');
      AppendJsonString(&line, f.key);
      line.push_back(':');
      if (f.quoted) {
        AppendJsonString(&line, f.value);
      } else {
        line.append(f.value);
      }
    }
    line.append("}\n");
  } else {
    absl::StrAppend(&line, ts, " ", LevelName(level), " ", *g_name, "[", getpid(), "] ");
    line.append(msg);
    for (const LogField& f : fields) {
      absl::StrAppend(&line, " ", f.key, "=");
      AppendTextValue(&line, f);
    }
    line.push_back('\n');
  }
  // One write per line: lines of concurrent processes never interleave
  // (stderr is a pipe or a file opened O_APPEND in practice).
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace countersd
