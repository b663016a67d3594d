// countersd's command-line configuration: the flags, their defaults and
// their validation. The flags are defined (ABSL_FLAG) in config.cc only;
// their defaults are those of Config below, and the limits their --help
// text states come from shared/limits.h.
#ifndef COUNTERSD_SERVER_CONFIG_H_
#define COUNTERSD_SERVER_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/cpu_budget.h"
#include "server/memory_budget.h"
#include "server/attach_config.h"
#include "server/metrics_config.h"
#include "shared/limits.h"
#include "shared/log.h"

namespace countersd {

class AuthPolicy;  // server/auth_policy.h

// The defaults: the one home of each, for Config, the flags and their help.
inline constexpr char kDefaultListen[] = "127.0.0.1:50051";
inline constexpr char kDefaultDataDir[] = "./var";
inline constexpr uint64_t kDefaultCapacity = 1000000;
inline constexpr absl::Duration kDefaultSnapshotInterval = absl::Seconds(1);
inline constexpr absl::Duration kDefaultDrainTimeout = absl::Seconds(5);
// The table's limit: clients may send the largest batch the table can apply.
inline constexpr size_t kDefaultMaxBatch = kMaxBatchOps;
// How often TLS files are checked for a rotation (transport_config.h).
inline constexpr absl::Duration kDefaultTlsReloadInterval = absl::Seconds(60);
inline constexpr uint32_t kDefaultUnixSocketMode = 0660;
// Exactly-once sessions (WriteOptions, shared/session_table.cc): how many
// the daemon remembers (each costs its place in the map file whether used
// or not; the file has kSessionSlots), and how long an idle one is kept:
// an hour covers any retry of a call's deadline many times over, and a
// client that writes at least hourly keeps its session for good.
inline constexpr uint32_t kDefaultSessionsMax = kSessionSlots;
inline constexpr absl::Duration kDefaultSessionTtl = absl::Hours(1);
inline constexpr absl::Duration kMinSessionTtl = absl::Seconds(1);
// Shortest --snapshot-interval accepted.
inline constexpr absl::Duration kMinSnapshotInterval = absl::Milliseconds(10);

// Liveness of the children (server/child_liveness.cc has how it works).
// A child stopped (SIGSTOP, a debugger) for this long while it holds a lock
// stripe is killed and recovered: every other handler may be waiting for
// that stripe. A second is thousands of times the longest critical section,
// and short enough that clients' deadlines survive it.
inline constexpr absl::Duration kDefaultLockHoldLimit = absl::Seconds(1);
// A handler whose serving loop has not turned for this long is killed and
// respawned: it is stopped or stuck, and its socket takes connections that
// nobody serves. Long enough that a loaded host's scheduling never reaches
// it, and at least twice the lock-hold limit (ValidateConfig), so that
// handlers waiting for a frozen holder's stripe are rescued by the lock
// check before they count as stalled themselves.
inline constexpr absl::Duration kDefaultHandlerStallLimit = absl::Seconds(5);
// Shortest --lock-hold-limit accepted (the check period is a quarter of it).
inline constexpr absl::Duration kMinLockHoldLimit = absl::Milliseconds(100);
// How often the supervisor checks its children: a quarter of the lock-hold
// limit.
absl::Duration LivenessCheckPeriod(absl::Duration lock_hold_limit);
// The longest one frozen lock holder stalls the other handlers: the limit,
// plus a check period (the first check that sees it stopped may come that
// long after it stopped), plus the reap and repair, which take milliseconds
// and are not counted here. 1.25 s by default.
absl::Duration FrozenHolderStallBound(absl::Duration lock_hold_limit);
// How often an idle serving loop turns (and beats): a quarter of the stall
// limit.
absl::Duration HeartbeatInterval(absl::Duration handler_stall_limit);

struct Config {
  // The transport (server/transport_config.h has the rules): comma-separated
  // addresses, host:port, [v6]:port (port 0 = any free port) or unix:PATH.
  std::string listen = kDefaultListen;
  std::string tls_cert_file;       // with tls_key_file: TLS on the TCP listeners
  std::string tls_key_file;
  std::string tls_client_ca_file;  // mTLS: client certificates required, verified against it
  absl::Duration tls_reload_interval = kDefaultTlsReloadInterval;
  uint32_t unix_socket_mode = kDefaultUnixSocketMode;
  std::string unix_socket_group;   // empty: the daemon's group
  bool allow_unauthenticated_network_access = false;  // protected mode's opt-out
  std::string data_dir = kDefaultDataDir;
  uint64_t capacity = kDefaultCapacity;  // used only when a table is created
  int handlers = DefaultHandlers().cpus;  // gRPC handler processes (cpu_budget.h)
  absl::Duration snapshot_interval = kDefaultSnapshotInterval;
  // 0: max(10s, 10 x snapshot_interval) (DurabilityLagLimit, shared/durability_lag.h).
  absl::Duration durability_lag_limit = absl::ZeroDuration();
  LogFormat log_format = LogFormat::kText;
  LogLevel log_level = LogLevel::kInfo;
  absl::Duration drain_timeout = kDefaultDrainTimeout;
  size_t max_batch = kDefaultMaxBatch;  // IncrementBatch / BatchGet entries per call
  uint32_t sessions_max = kDefaultSessionsMax;  // 0: sessions off
  absl::Duration session_ttl = kDefaultSessionTtl;
  bool trust_untrusted_map = false;
  // Per handler: bytes gRPC may hold (grpc::ResourceQuota), and connections.
  size_t handler_memory_quota = DefaultHandlerMemoryQuota(MemoryLimitBytes());
  int max_connections = DefaultMaxConnections(handler_memory_quota);
  int max_concurrent_streams = kDefaultMaxConcurrentStreams;  // per connection
  absl::Duration handshake_timeout = kDefaultHandshakeTimeout;
  absl::Duration idle_timeout = kDefaultIdleTimeout;
  absl::Duration min_ping_interval = kDefaultMinPingInterval;
  absl::Duration lock_hold_limit = kDefaultLockHoldLimit;
  absl::Duration handler_stall_limit = kDefaultHandlerStallLimit;
  std::string auth_file;  // principals and roles (the auth layer's flag)
  MetricsConfig metrics;  // /metrics (server/metrics_config.h)
  AttachConfig attach;    // local attach (server/attach_config.h)
  // auth_file as ParseFlagsOrExit loaded it (null without one).
  std::shared_ptr<const AuthPolicy> auth_policy;
  // How ParseFlagsOrExit got the values, for the start-up log: why this many
  // handlers ("--handlers", "COUNTERSD_HANDLERS", or DefaultHandlerCount's
  // reason), whether --capacity was given (flag or environment), and
  // warnings to log at start (unknown COUNTERSD_ variables).
  std::string handlers_because;
  bool capacity_given = false;
  std::vector<std::string> warnings;
};

// Parses argv. `--help` (or -h, --helpfull, --helpshort) prints the flags of
// countersd and exits 0. An unknown flag, a positional argument or a bad
// value prints a message naming it and exits 2. Returns the validated
// configuration otherwise.
Config ParseFlagsOrExit(int argc, char** argv);

// Checks values that each parse but do not make sense (e.g. --handlers=0).
// INVALID_ARGUMENT naming the flag and the allowed range.
absl::Status ValidateConfig(const Config& config);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CONFIG_H_
