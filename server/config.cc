#include "server/config.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"
#include "shared/counter_table.h"

namespace {

int CpuCount() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve gRPC on, host:port or [ipv6]:port. Port 0 picks a free port (the "
          "\"ready\" log line names it). Every handler process listens on it (SO_REUSEPORT); a "
          "second countersd on the same address fails at start.");
ABSL_FLAG(std::string, data_dir, "./var",
          "Directory holding counters.map (the live table), counters.snap (snapshots) and LOCK. "
          "Created (mode 0700) if missing. Only one countersd may use it at a time.");
ABSL_FLAG(uint64_t, capacity, 1000000,
          "Maximum number of counters, used only when a new table is created (a fresh data "
          "directory or a restore from a snapshot); an existing table keeps its capacity. "
          "1 to 1073741824.");
ABSL_FLAG(int, handlers, CpuCount(),
          "Number of gRPC handler processes (default: the number of CPUs). 1 to 62.");
ABSL_FLAG(absl::Duration, snapshot_interval, absl::Seconds(1),
          "How often the aggregator writes a durable snapshot of all counters to counters.snap "
          "(e.g. 500ms, 1s, 1m). This bounds what a host crash or power loss can lose. The "
          "Snapshot RPC writes one immediately. At least 10ms.");
ABSL_FLAG(std::string, log_format, "text",
          "Log format on stderr: text (one human-readable line per event) or json (one JSON "
          "object per line).");
ABSL_FLAG(std::string, log_level, "info", "Lowest level logged: debug, info, warning or error.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(5),
          "On SIGTERM/SIGINT, how long handlers may take to finish calls already in flight "
          "before they are cancelled. New calls fail UNAVAILABLE while draining.");
ABSL_FLAG(uint64_t, max_batch, 1000,
          "Largest IncrementBatch or BatchGet request, in entries; bigger requests fail "
          "RESOURCE_EXHAUSTED. 1 to the table's limit (1000).");
ABSL_FLAG(bool, trust_untrusted_map, false,
          "Use counters.map as it is even when it was left by an unclean stop during an earlier "
          "boot (a host crash may have torn it), instead of restoring the last snapshot. For an "
          "operator recovering by hand: prefer the snapshot when one exists.");

namespace countersd {
namespace {

constexpr const char* kFlagNames[] = {
    "listen",     "data_dir",  "capacity",      "handlers",  "snapshot_interval",
    "log_format", "log_level", "drain_timeout", "max_batch", "trust_untrusted_map"};

[[noreturn]] void UsageError(std::string_view message) {
  std::fprintf(stderr, "countersd: %.*s\nRun 'countersd --help' for the list of flags.\n",
               static_cast<int>(message.size()), message.data());
  std::exit(2);
}

std::string DashName(std::string_view name) {
  std::string out = absl::StrCat("--", Sv(name));
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

[[noreturn]] void PrintHelpAndExit() {
  std::string out =
      "countersd: keeps named signed 64-bit counters in a shared memory-mapped table and serves\n"
      "them over gRPC (service counters.v1.CounterService, plus grpc.health.v1.Health and\n"
      "server reflection).\n\n"
      "Usage: countersd [--flag=value ...]\n\n"
      "Flags (also accepted with underscores, e.g. --data_dir):\n";
  for (const char* name : kFlagNames) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    std::string def = flag->DefaultValue();
    if (flag->IsOfType<std::string>()) def = absl::StrCat("\"", def, "\"");
    absl::StrAppend(&out, "  ", DashName(name), " (default ", def, ")\n      ", flag->Help(), "\n");
  }
  absl::StrAppend(&out,
                  "\nSignals: SIGTERM or SIGINT drain the handlers, write a final snapshot, mark "
                  "the table cleanly shut down and exit 0.\n"
                  "Exit codes: 0 clean shutdown, 1 failed to start or to shut down cleanly, 2 bad "
                  "flags.\n");
  std::fputs(out.c_str(), stdout);
  std::exit(0);
}

bool IsOurs(std::string_view name) {
  for (const char* n : kFlagNames) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace

Config ParseFlagsOrExit(int argc, char** argv) {
  // A small parser instead of absl::ParseCommandLine: that one exits 1 on a
  // bad flag and accepts Abseil's own flags; countersd exits 2 and knows
  // only its own. Accepted forms: --name=value, --name value, -name=value,
  // and for the boolean flag --name, --noname, --name=true|false.
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      if (i + 1 < argc) UsageError(absl::StrCat("unexpected argument '", argv[i + 1], "'"));
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      UsageError(
          absl::StrCat("unexpected argument '", Sv(arg), "' (flags look like --name=value)"));
    }
    std::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name(body.substr(0, body.find('=')));
    std::replace(name.begin(), name.end(), '-', '_');
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos)
      value = std::string(body.substr(eq + 1));

    if (name == "help" || name == "h" || name == "helpfull" || name == "helpshort" ||
        name == "helppackage") {
      PrintHelpAndExit();
    }
    absl::CommandLineFlag* flag = IsOurs(name) ? absl::FindCommandLineFlag(name) : nullptr;
    if (flag == nullptr && absl::StartsWith(name, "no") && IsOurs(name.substr(2))) {
      absl::CommandLineFlag* negated = absl::FindCommandLineFlag(name.substr(2));
      if (negated != nullptr && negated->IsOfType<bool>() && !value) {
        flag = negated;
        value = "false";
      }
    }
    if (flag == nullptr) UsageError(absl::StrCat("unknown flag '", Sv(arg), "'"));
    if (!value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        UsageError(absl::StrCat("flag ", DashName(name), " needs a value"));
      }
    }
    std::string error;
    if (!flag->ParseFrom(*value, &error)) {
      UsageError(absl::StrCat("bad value '", *value, "' for ", DashName(name), ": ", error));
    }
  }

  Config c;
  c.listen = absl::GetFlag(FLAGS_listen);
  c.data_dir = absl::GetFlag(FLAGS_data_dir);
  c.capacity = absl::GetFlag(FLAGS_capacity);
  c.handlers = absl::GetFlag(FLAGS_handlers);
  c.snapshot_interval = absl::GetFlag(FLAGS_snapshot_interval);
  c.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  c.max_batch = absl::GetFlag(FLAGS_max_batch);
  c.trust_untrusted_map = absl::GetFlag(FLAGS_trust_untrusted_map);
  std::string format = absl::GetFlag(FLAGS_log_format);
  if (format == "text") {
    c.log_format = LogFormat::kText;
  } else if (format == "json") {
    c.log_format = LogFormat::kJson;
  } else {
    UsageError(absl::StrCat("bad value '", format, "' for --log-format: must be text or json"));
  }
  std::string level = absl::GetFlag(FLAGS_log_level);
  if (level == "debug") {
    c.log_level = LogLevel::kDebug;
  } else if (level == "info") {
    c.log_level = LogLevel::kInfo;
  } else if (level == "warning") {
    c.log_level = LogLevel::kWarning;
  } else if (level == "error") {
    c.log_level = LogLevel::kError;
  } else {
    UsageError(absl::StrCat("bad value '", level,
                            "' for --log-level: must be debug, info, warning or error"));
  }
  if (absl::Status s = ValidateConfig(c); !s.ok()) UsageError(std::string(s.message()));
  return c;
}

absl::Status ValidateConfig(const Config& c) {
  if (c.listen.empty()) return absl::InvalidArgumentError("--listen must not be empty");
  if (c.data_dir.empty()) return absl::InvalidArgumentError("--data-dir must not be empty");
  if (c.capacity < 1 || c.capacity > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--capacity=", c.capacity, " is out of range: must be 1 to 1073741824"));
  }
  if (c.handlers < 1 || c.handlers > kMaxHandlers) {
    return absl::InvalidArgumentError(
        absl::StrCat("--handlers=", c.handlers, " is out of range: must be 1 to ", kMaxHandlers));
  }
  if (c.snapshot_interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--snapshot-interval=", absl::FormatDuration(c.snapshot_interval),
                     " is too short: must be at least 10ms"));
  }
  if (c.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--drain-timeout must not be negative");
  }
  if (c.max_batch < 1 || c.max_batch > kMaxBatchOps) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-batch=", c.max_batch, " is out of range: must be 1 to ", kMaxBatchOps));
  }
  return absl::OkStatus();
}

}  // namespace countersd
