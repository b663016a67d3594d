// countersd's flags.
//
// Every default and every number a help text states has one home: the
// defaults are those of a default-constructed Config (config.h), the limits
// come from shared/limits.h, the file names from shared/data_dir.h. A help
// text that states one is built at run time: ABSL_FLAG takes any expression
// convertible to a string view as its help, and keeps a generator for one
// that is not a compile-time constant.
#include "server/config.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"
#include "shared/data_dir.h"

namespace countersd {
namespace {

// The names of the enum-valued flags' values.
constexpr std::pair<const char*, LogFormat> kLogFormatNames[] = {{"text", LogFormat::kText},
                                                                 {"json", LogFormat::kJson}};
constexpr std::pair<const char*, LogLevel> kLogLevelNames[] = {{"debug", LogLevel::kDebug},
                                                               {"info", LogLevel::kInfo},
                                                               {"warning", LogLevel::kWarning},
                                                               {"error", LogLevel::kError}};

template <typename Enum, size_t N>
const char* NameOf(const std::pair<const char*, Enum> (&names)[N], Enum value) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "";
}

template <typename Enum, size_t N>
std::optional<Enum> ValueOf(const std::pair<const char*, Enum> (&names)[N], std::string_view name) {
  for (const auto& [n, v] : names) {
    if (name == n) return v;
  }
  return std::nullopt;
}

// The flags' defaults.
const Config& Defaults() {
  static const Config* const defaults = new Config();
  return *defaults;
}

}  // namespace

int DefaultHandlerCount() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace countersd

using countersd::Defaults;

ABSL_FLAG(std::string, listen, Defaults().listen,
          "Address to serve gRPC on, host:port or [ipv6]:port. Port 0 picks a free port (the "
          "\"ready\" log line names it). Every handler process listens on it (SO_REUSEPORT); a "
          "second countersd on the same address fails at start.");
ABSL_FLAG(std::string, data_dir, Defaults().data_dir,
          absl::StrCat("Directory holding ", countersd::kMapFile, " (the live table), ",
                       countersd::kSnapshotFile, " (snapshots) and ", countersd::kLockFile,
                       ". Created (mode 0700) if missing. Only one countersd may use it at a "
                       "time."));
ABSL_FLAG(uint64_t, capacity, Defaults().capacity,
          absl::StrCat("Maximum number of counters, used only when a new table is created (a "
                       "fresh data directory or a restore from a snapshot); an existing table "
                       "keeps its capacity. 1 to ",
                       countersd::kMaxCapacity, "."));
ABSL_FLAG(int, handlers, Defaults().handlers,
          absl::StrCat("Number of gRPC handler processes (default: the number of CPUs). 1 to ",
                       countersd::kMaxHandlers, "."));
ABSL_FLAG(absl::Duration, snapshot_interval, Defaults().snapshot_interval,
          absl::StrCat("How often the aggregator writes a durable snapshot of all counters to ",
                       countersd::kSnapshotFile,
                       " (e.g. 500ms, 1s, 1m). This bounds what a host crash or power loss can "
                       "lose. The Snapshot RPC writes one immediately. At least ",
                       absl::FormatDuration(countersd::kMinSnapshotInterval), "."));
ABSL_FLAG(std::string, log_format,
          countersd::NameOf(countersd::kLogFormatNames, Defaults().log_format),
          "Log format on stderr: text (one human-readable line per event) or json (one JSON "
          "object per line).");
ABSL_FLAG(std::string, log_level,
          countersd::NameOf(countersd::kLogLevelNames, Defaults().log_level),
          "Lowest level logged: debug, info, warning or error.");
ABSL_FLAG(absl::Duration, drain_timeout, Defaults().drain_timeout,
          "On SIGTERM/SIGINT, how long handlers may take to finish calls already in flight "
          "before they are cancelled. New calls fail UNAVAILABLE while draining.");
ABSL_FLAG(uint64_t, max_batch, Defaults().max_batch,
          absl::StrCat("Largest IncrementBatch or BatchGet request, in entries; bigger requests "
                       "fail RESOURCE_EXHAUSTED. 1 to the table's limit (",
                       countersd::kMaxBatchOps, ")."));
ABSL_FLAG(bool, trust_untrusted_map, Defaults().trust_untrusted_map,
          absl::StrCat("Use ", countersd::kMapFile,
                       " as it is even when it was left by an unclean stop during an earlier "
                       "boot (a host crash may have torn it), instead of restoring the last "
                       "snapshot. For an operator recovering by hand: prefer the snapshot when "
                       "one exists."));

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
  std::optional<LogFormat> log_format = ValueOf(kLogFormatNames, format);
  if (!log_format) {
    UsageError(absl::StrCat("bad value '", format, "' for --log-format: must be text or json"));
  }
  c.log_format = *log_format;
  std::string level = absl::GetFlag(FLAGS_log_level);
  std::optional<LogLevel> log_level = ValueOf(kLogLevelNames, level);
  if (!log_level) {
    UsageError(absl::StrCat("bad value '", level,
                            "' for --log-level: must be debug, info, warning or error"));
  }
  c.log_level = *log_level;
  if (absl::Status s = ValidateConfig(c); !s.ok()) UsageError(std::string(s.message()));
  return c;
}

absl::Status ValidateConfig(const Config& c) {
  if (c.listen.empty()) return absl::InvalidArgumentError("--listen must not be empty");
  if (c.data_dir.empty()) return absl::InvalidArgumentError("--data-dir must not be empty");
  if (c.capacity < 1 || c.capacity > kMaxCapacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("--capacity=", c.capacity, " is out of range: must be 1 to ", kMaxCapacity));
  }
  if (c.handlers < 1 || c.handlers > kMaxHandlers) {
    return absl::InvalidArgumentError(
        absl::StrCat("--handlers=", c.handlers, " is out of range: must be 1 to ", kMaxHandlers));
  }
  if (c.snapshot_interval < kMinSnapshotInterval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--snapshot-interval=", absl::FormatDuration(c.snapshot_interval),
        " is too short: must be at least ", absl::FormatDuration(kMinSnapshotInterval)));
  }
  if (c.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--drain-timeout must not be negative");
  }
  if (c.max_batch < 1 || c.max_batch > kMaxBatchOps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-batch=", c.max_batch, " is out of range: must be 1 to ", kMaxBatchOps));
  }
  return absl::OkStatus();
}

}  // namespace countersd
