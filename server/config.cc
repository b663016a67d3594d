// countersd's flags.
//
// Every default and every number a help text states has one home: the
// defaults are those of a default-constructed Config (config.h), the limits
// come from shared/limits.h, the file names from shared/data_dir.h. A help
// text that states one is built at run time: ABSL_FLAG takes any expression
// convertible to a string view as its help, and keeps a generator for one
// that is not a compile-time constant.
#include "server/config.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/auth_policy.h"
#include "server/flag_environment.h"
#include "shared/abseil_string_view.h"
#include "server/tls_file_check.h"
#include "server/transport_config.h"
#include "shared/data_dir.h"
#include "shared/status_macros.h"

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

// "33554432", "32MiB", "32M", "512KiB", "1GiB": bytes, binary units.
std::optional<uint64_t> ParseByteSize(absl::string_view text) {
  constexpr std::pair<const char*, uint64_t> kUnits[] = {
      {"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10},
      {"M", 1 << 20},   {"G", 1 << 30},   {"B", 1}};
  uint64_t unit = 1;
  for (const auto& [suffix, size] : kUnits) {
    if (absl::ConsumeSuffix(&text, suffix)) {
      unit = size;
      break;
    }
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(text, &n) || n > UINT64_MAX / unit) return std::nullopt;
  return n * unit;
}

std::string FormatByteSize(uint64_t bytes) {
  if (bytes % (1 << 20) == 0) return absl::StrCat(bytes >> 20, "MiB");
  if (bytes % (1 << 10) == 0) return absl::StrCat(bytes >> 10, "KiB");
  return absl::StrCat(bytes);
}

// The flags' defaults.
const Config& Defaults() {
  static const Config* const defaults = new Config();
  return *defaults;
}

std::vector<std::string> g_from_environment;  // flags set from COUNTERSD_ variables

}  // namespace

absl::Duration LivenessCheckPeriod(absl::Duration lock_hold_limit) { return lock_hold_limit / 4; }

absl::Duration FrozenHolderStallBound(absl::Duration lock_hold_limit) {
  return lock_hold_limit + LivenessCheckPeriod(lock_hold_limit);
}

absl::Duration HeartbeatInterval(absl::Duration handler_stall_limit) {
  return handler_stall_limit / 4;
}

}  // namespace countersd

using countersd::Defaults;

ABSL_FLAG(std::string, data_dir, Defaults().data_dir,
          absl::StrCat("Directory holding ", countersd::kMapFile, " (the live table), ",
                       countersd::kSnapshotFile, " (snapshots) and ", countersd::kLockFile,
                       ". Created (mode 0700) if missing. Only one countersd may use it at a "
                       "time."));
ABSL_FLAG(uint64_t, capacity, Defaults().capacity,
          absl::StrCat("Maximum number of counters, used only when a new table is created (a "
                       "fresh data directory or a restore from a snapshot); an existing table "
                       "keeps its capacity, with a warning when this differs. To grow one: stop "
                       "countersd, move ", countersd::kMapFile, " out of --data-dir, start with "
                       "the new --capacity (the final snapshot is restored at it). 1 to ",
                       countersd::kMaxCapacity, "."));
ABSL_FLAG(int, handlers, Defaults().handlers,
          absl::StrCat("Number of gRPC handler processes. 1 to ", countersd::kMaxHandlers,
                       ". Default: the CPUs this process may use, the fewer of its affinity "
                       "mask's CPUs and its CPU quota rounded up (cgroup v2 cpu.max, or v1 "
                       "cpu.cfs_quota_us/cpu.cfs_period_us; the tightest of its cgroup and every "
                       "parent), at most ", countersd::kMaxHandlers, "; here ",
                       countersd::DefaultHandlers().cpus, " (", countersd::DefaultHandlers().because,
                       "). The start-up log says how many and why."));
ABSL_FLAG(absl::Duration, snapshot_interval, Defaults().snapshot_interval,
          absl::StrCat("How often the aggregator writes a durable snapshot of all counters to ",
                       countersd::kSnapshotFile,
                       " (e.g. 500ms, 1s, 1m). This bounds what a host crash or power loss can "
                       "lose. The Snapshot RPC writes one immediately. At least ",
                       absl::FormatDuration(countersd::kMinSnapshotInterval), "."));
ABSL_FLAG(absl::Duration, durability_lag_limit, Defaults().durability_lag_limit,
          "How old a change may get while it is in no durable snapshot before the daemon "
          "reports that snapshots are not being written: health service countersd.durability "
          "turns NOT_SERVING and the log says so at error level every interval. 0 (the "
          "default) means max(10s, 10 x --snapshot-interval).");
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
ABSL_FLAG(uint32_t, sessions_max, Defaults().sessions_max,
          absl::StrCat("Exactly-once sessions the daemon remembers (a client's WriteOptions: "
                       "its retries are applied once). When every place is taken, a new session "
                       "takes the least recently used one's, whose later writes then get "
                       "FAILED_PRECONDITION (unknown session) rather than being applied twice. 0 "
                       "turns sessions off. 0 to ", countersd::kSessionSlots, "."));
ABSL_FLAG(absl::Duration, session_ttl, Defaults().session_ttl,
          absl::StrCat("How long a session with no write is remembered (e.g. 10m, 1h). A "
                       "retry later than this after its first attempt may be refused as of an "
                       "unknown session; it is never applied twice. Measured on the wall clock, "
                       "since sessions outlive restarts. At least ",
                       absl::FormatDuration(countersd::kMinSessionTtl), "."));
ABSL_FLAG(bool, trust_untrusted_map, Defaults().trust_untrusted_map,
          absl::StrCat("Use ", countersd::kMapFile,
                       " as it is even when it was left by an unclean stop during an earlier "
                       "boot (a host crash may have torn it), instead of restoring the last "
                       "snapshot. For an operator recovering by hand: prefer the snapshot when "
                       "one exists."));

ABSL_FLAG(std::string, handler_memory_quota,
          countersd::FormatByteSize(Defaults().handler_memory_quota),
          absl::StrCat(
              "Memory each handler's gRPC may hold for connections, streams and calls "
              "(grpc::ResourceQuota); past it gRPC cancels streams, sends idle connections "
              "GOAWAY and drops new connections. Bytes, or with KiB/MiB/GiB. Default: the "
              "process's memory limit (cgroup memory.max, else physical memory, here ",
              countersd::FormatByteSize(countersd::MemoryLimitBytes()), ") / 32, within ",
              countersd::FormatByteSize(countersd::kMinHandlerMemoryQuota), " to ",
              countersd::FormatByteSize(countersd::kMaxDefaultHandlerMemoryQuota),
              ". At least ", countersd::FormatByteSize(countersd::kMinHandlerMemoryQuota), "."));
ABSL_FLAG(int, max_connections, Defaults().max_connections,
          absl::StrCat("Open client connections each handler accepts on each plaintext listener "
                       "(a plaintext TCP address, its share of a unix socket); one more is "
                       "accepted and reset at once. Not applied to TLS listeners: gRPC 1.51 "
                       "can hand over only plaintext sockets, so with TLS on gRPC accepts the "
                       "TCP connections itself and has no cap (cap them in front, e.g. with a "
                       "firewall's connlimit). Default: --handler-memory-quota / ",
                       countersd::kConnectionCostEstimate / 1024,
                       " KiB (what a connection costs gRPC). Needs that many file descriptors "
                       "plus ",
                       countersd::kReservedFds, " under the RLIMIT_NOFILE hard limit."));
ABSL_FLAG(int, max_concurrent_streams, Defaults().max_concurrent_streams,
          "HTTP/2 streams (calls) a client may have open at once on one connection. 1 to "
          "100000.");
ABSL_FLAG(absl::Duration, handshake_timeout, Defaults().handshake_timeout,
          "A connection that has not sent its HTTP/2 preface and first SETTINGS frame this long "
          "after it was accepted is closed (slow or idle clients that never start). On a TLS "
          "listener it is gRPC's own handshake deadline (GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS).");
ABSL_FLAG(absl::Duration, idle_timeout, Defaults().idle_timeout,
          "A connection with no call in progress for this long is sent GOAWAY and closed; "
          "clients reconnect on their next call.");
ABSL_FLAG(absl::Duration, min_ping_interval, Defaults().min_ping_interval,
          absl::StrCat("Shortest interval between a client's keepalive pings that is not "
                       "abuse; after ",
                       countersd::kMaxPingStrikes,
                       " pings sooner than that the connection is sent GOAWAY (too_many_pings). "
                       "Set clients' keepalive time at or above it."));
ABSL_FLAG(absl::Duration, lock_hold_limit, Defaults().lock_hold_limit,
          absl::StrCat(
              "A handler or the aggregator that is stopped (SIGSTOP, a debugger) for this long "
              "while it holds a lock stripe is logged (pid, role, stripe), killed and "
              "recovered, so that the other handlers, which may be waiting for that stripe, "
              "serve again. The supervisor checks every quarter of it, so one frozen holder "
              "stalls the others for at most this plus a quarter plus the repair (milliseconds): ",
              absl::FormatDuration(
                  countersd::FrozenHolderStallBound(countersd::kDefaultLockHoldLimit)),
              " by default. At least ", absl::FormatDuration(countersd::kMinLockHoldLimit),
              "."));
ABSL_FLAG(absl::Duration, handler_stall_limit, Defaults().handler_stall_limit,
          "A handler whose serving loop has made no progress for this long (stopped, or its "
          "serving thread stuck) is logged, killed and respawned, so that its socket stops "
          "taking connections nobody serves. At least twice --lock-hold-limit.");
ABSL_FLAG(std::string, auth_file, "",
          "Principals, their roles (read, write, admin) and key prefixes: one a line, a bearer "
          "token's SHA-256, a client certificate's SAN or CN, or a unix peer uid (format in "
          "deploy/auth.example). Every CounterService call must then be one of them (Health "
          "and reflection stay open). Read at start (a bad file exits 2 naming the line) and "
          "on SIGHUP (a bad file is logged and the policy in force kept).");

namespace countersd {
namespace {

constexpr const char* kFlagNames[] = {"listen", "tls_cert_file", "tls_key_file",
                                      "tls_client_ca_file", "tls_reload_interval",
                                      "unix_socket_mode", "unix_socket_group",
                                      "allow_unauthenticated_network_access",
                                      "data_dir",
                                      "capacity",
                                      "handlers",
                                      "snapshot_interval",
                                      "durability_lag_limit",
                                      "log_format",
                                      "log_level",
                                      "drain_timeout",
                                      "max_batch",
                                      "sessions_max",
                                      "session_ttl",
                                      "trust_untrusted_map",
                                      "handler_memory_quota",
                                      "max_connections",
                                      "max_concurrent_streams",
                                      "handshake_timeout",
                                      "idle_timeout",
                                      "min_ping_interval",
                                      "lock_hold_limit",
                                      "handler_stall_limit",
                                      "auth_file",
                                      COUNTERSD_METRICS_FLAG_NAMES, COUNTERSD_ATTACH_FLAG_NAMES};

[[noreturn]] void UsageError(std::string_view message) {
  const std::string text = absl::StrCat(Sv(message), EnvironmentNote(message, g_from_environment));
  std::fprintf(stderr, "countersd: %s\nRun 'countersd --help' for the list of flags.\n",
               text.c_str());
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
                  "the table cleanly shut down and exit 0. SIGHUP re-reads --auth-file.\n"
                  "If the supervisor dies, its children are SIGKILLed (PR_SET_PDEATHSIG) and "
                  "the LOCK is free at once.\n"
                  "Exit codes: 0 clean shutdown, 1 failed to start or to shut down cleanly, 2 bad "
                  "flags.\n",
                  FlagEnvironmentHelp());
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
  std::set<std::string> given;
  std::vector<std::string> prefixes;  // --metrics-export-prefix repeats
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
    given.insert(std::string(flag->Name()));
    if (flag->Name() == "metrics_export_prefix") prefixes.push_back(*value);
  }
  // COUNTERSD_<FLAG> for the flags not given (flag_environment.h).
  absl::StatusOr<FlagEnvironment> env = ApplyFlagEnvironment(kFlagNames, given, environ);
  if (!env.ok()) UsageError(std::string(env.status().message()));
  g_from_environment = env->applied;
  given.insert(env->applied.begin(), env->applied.end());

  Config c;
  for (const absl::Status& s : {ReadTransportFlags(&c), ReadMetricsFlags(prefixes, &c.metrics),
                                ReadAttachFlags(&c.attach)}) {
    if (!s.ok()) UsageError(std::string(s.message()));
  }
  c.data_dir = absl::GetFlag(FLAGS_data_dir);
  c.capacity = absl::GetFlag(FLAGS_capacity);
  c.handlers = absl::GetFlag(FLAGS_handlers);
  c.handlers_because = given.count("handlers") != 0 ? FlagSource("handlers", env->applied)
                                                     : DefaultHandlers().because;
  c.capacity_given = given.count("capacity") != 0;
  c.warnings = std::move(env->warnings);
  c.snapshot_interval = absl::GetFlag(FLAGS_snapshot_interval);
  c.durability_lag_limit = absl::GetFlag(FLAGS_durability_lag_limit);
  c.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  c.max_batch = absl::GetFlag(FLAGS_max_batch);
  c.sessions_max = absl::GetFlag(FLAGS_sessions_max);
  c.session_ttl = absl::GetFlag(FLAGS_session_ttl);
  c.trust_untrusted_map = absl::GetFlag(FLAGS_trust_untrusted_map);
  std::string quota = absl::GetFlag(FLAGS_handler_memory_quota);
  std::optional<uint64_t> quota_bytes = ParseByteSize(Sv(quota));
  if (!quota_bytes) {
    UsageError(absl::StrCat("bad value '", quota,
                            "' for --handler-memory-quota: must be bytes, or a number with "
                            "KiB, MiB or GiB (e.g. 32MiB)"));
  }
  c.handler_memory_quota = static_cast<size_t>(*quota_bytes);
  // --max-connections follows a --handler-memory-quota given without it.
  c.max_connections = given.count("max_connections") != 0
                          ? absl::GetFlag(FLAGS_max_connections)
                          : DefaultMaxConnections(c.handler_memory_quota);
  c.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  c.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  c.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  c.min_ping_interval = absl::GetFlag(FLAGS_min_ping_interval);
  c.lock_hold_limit = absl::GetFlag(FLAGS_lock_hold_limit);
  c.handler_stall_limit = absl::GetFlag(FLAGS_handler_stall_limit);
  c.auth_file = absl::GetFlag(FLAGS_auth_file);
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
  // Bad TLS files are a start-up error naming the file (exit 2).
  if (absl::StatusOr<TlsMaterial> tls = ReadTlsFiles(TlsFilesOf(c)); !tls.ok()) {
    UsageError(std::string(tls.status().message()));
  }
  if (!c.auth_file.empty()) {
    absl::StatusOr<std::shared_ptr<const AuthPolicy>> policy = AuthPolicy::LoadFile(c.auth_file);
    if (!policy.ok()) UsageError(absl::StrCat("--auth-file: ", policy.status().message()));
    c.auth_policy = *std::move(policy);
  }
  // Each handler raises its soft RLIMIT_NOFILE to what --max-connections
  // needs on each gated listener (handler_process.cc,
  // HandlerListeners::MaxGatedConnections); the hard limit must allow it.
  rlimit nofile{};
  const uint64_t gated = static_cast<uint64_t>(c.max_connections) * GatedListenerCount(c);
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max != RLIM_INFINITY &&
      gated + kReservedFds > nofile.rlim_max) {
    UsageError(absl::StrCat("--max-connections=", c.max_connections, " on ",
                            GatedListenerCount(c), " plaintext listener(s) needs ",
                            gated + kReservedFds,
                            " file descriptors per handler, but the RLIMIT_NOFILE hard limit is ",
                            nofile.rlim_max, ": lower --max-connections or raise the limit "
                            "(ulimit -Hn, LimitNOFILE=)"));
  }
  return c;
}

absl::Status ValidateConfig(const Config& c) {
  RETURN_IF_ERROR(ValidateTransportConfig(c));
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
  if (c.durability_lag_limit < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--durability-lag-limit must not be negative");
  }
  if (c.drain_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--drain-timeout must not be negative");
  }
  if (c.max_batch < 1 || c.max_batch > kMaxBatchOps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-batch=", c.max_batch, " is out of range: must be 1 to ", kMaxBatchOps));
  }
  if (c.sessions_max > kSessionSlots) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--sessions-max=", c.sessions_max, " is out of range: must be 0 to ", kSessionSlots,
        " (the places for sessions in the map file)"));
  }
  if (c.session_ttl < kMinSessionTtl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--session-ttl=", absl::FormatDuration(c.session_ttl), " is too short: must be at least ",
        absl::FormatDuration(kMinSessionTtl)));
  }
  if (c.handler_memory_quota < kMinHandlerMemoryQuota) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--handler-memory-quota=", FormatByteSize(c.handler_memory_quota),
        " is too small: must be at least ", FormatByteSize(kMinHandlerMemoryQuota)));
  }
  if (c.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-connections=", c.max_connections, " must be at least 1"));
  }
  if (c.max_concurrent_streams < 1 || c.max_concurrent_streams > kMaxConcurrentStreamsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("--max-concurrent-streams=",
                                                   c.max_concurrent_streams,
                                                   " is out of range: must be 1 to ",
                                                   kMaxConcurrentStreamsLimit));
  }
  if (c.lock_hold_limit < kMinLockHoldLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--lock-hold-limit=", absl::FormatDuration(c.lock_hold_limit),
        " is too short: must be at least ", absl::FormatDuration(kMinLockHoldLimit)));
  }
  if (c.handler_stall_limit < 2 * c.lock_hold_limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--handler-stall-limit=", absl::FormatDuration(c.handler_stall_limit),
        " is too short: must be at least twice --lock-hold-limit (",
        absl::FormatDuration(2 * c.lock_hold_limit),
        "), so that handlers waiting for a frozen lock holder are not taken for stalled"));
  }
  // gRPC takes these as int milliseconds.
  for (const auto& [flag, d] : {std::pair{"--handshake-timeout", c.handshake_timeout},
                                std::pair{"--idle-timeout", c.idle_timeout},
                                std::pair{"--min-ping-interval", c.min_ping_interval}}) {
    if (d < absl::Milliseconds(1) || d > absl::Milliseconds(INT32_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, "=", absl::FormatDuration(d),
                                                     " is out of range: must be 1ms to ",
                                                     absl::FormatDuration(absl::Milliseconds(INT32_MAX))));
    }
  }
  return absl::OkStatus();
}

}  // namespace countersd
