#include "server/library_logs.h"

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "shared/log.h"
#include "shared/log_rate_limit.h"
#include "shared/monotonic_time.h"

namespace countersd {
namespace {

LogRateLimit& Limit() {
  static LogRateLimit* limit = new LogRateLimit(absl::Seconds(1));  // never destroyed
  return *limit;
}

void Emit(LogLevel level, const char* library, const char* file, int line, const char* message) {
  const std::string source = absl::StrCat(file == nullptr ? "?" : file, ":", line);
  uint64_t left_out = 0;
  if (!Limit().Admit(absl::StrCat(library, " ", source), MonotonicNow(), &left_out)) return;
  Log(level, absl::StrCat(library, ": ", message),
      {{"library", library}, {"source", source}, {"lines_not_logged", left_out}});
}

void GrpcLog(gpr_log_func_args* args) {
  const LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kError
                         : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                                   : LogLevel::kDebug;
  Emit(level, "grpc", args->file, args->line, args->message);
}

void ProtobufLog(google::protobuf::LogLevel severity, const char* file, int line,
                 const std::string& message) {
  // Protobuf's errors in a server are about what a client sent (a parse
  // failure), which the call's status already answers: a warning.
  const LogLevel level = severity >= google::protobuf::LOGLEVEL_FATAL     ? LogLevel::kError
                         : severity >= google::protobuf::LOGLEVEL_WARNING ? LogLevel::kWarning
                                                                          : LogLevel::kInfo;
  Emit(level, "protobuf", file, line, message.c_str());
}

}  // namespace

void RouteLibraryLogs() {
  gpr_set_log_function(GrpcLog);
  google::protobuf::SetLogHandler(ProtobufLog);
}

}  // namespace countersd
