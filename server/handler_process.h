// The entry point of a handler process: one grpc::Server on the shared port,
// serving counters.v1.CounterService from the shared table, plus
// grpc.health.v1 and server reflection. See handler_process.cc for its
// threads and how it drains.
//
// No gRPC header here, nor in anything this includes: the supervisor
// includes it, and the supervisor must never create a gRPC object (the
// build checks its include closure; see server/CMakeLists.txt).
#ifndef COUNTERSD_SERVER_HANDLER_PROCESS_H_
#define COUNTERSD_SERVER_HANDLER_PROCESS_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "server/config.h"
#include "shared/counter_table.h"
#include "shared/durability_lag.h"
#include "shared/stats_area.h"

namespace countersd {

// Where a handler takes connections (handler_listeners.h): given by the
// supervisor, which resolved the TCP ports and created the unix sockets.
struct HandlerListen {
  std::vector<std::string> tcp_addresses;  // numeric, resolved ports (PortReservation)
  std::vector<int> unix_fds;               // inherited listening sockets (UnixListener)
  std::vector<std::string> unix_paths;     // their paths, for logs
  // TLS on the TCP addresses: the supervisor's checked copy (tls_staging.h);
  // empty key_path: plaintext.
  std::string tls_key_path, tls_cert_path, tls_ca_path;
  absl::Duration tls_reload_interval = kDefaultTlsReloadInterval;
  // Every address, as the ready line and the logs name them.
  std::string Describe() const {
    std::string out;
    for (const std::string& a : tcp_addresses) out += (out.empty() ? "" : ",") + a;
    for (const std::string& p : unix_paths) out += (out.empty() ? "unix:" : ",unix:") + p;
    return out;
  }
};

struct HandlerOptions {
  HandlerListen listen;
  size_t max_batch = kDefaultMaxBatch;
  absl::Duration drain_timeout = kDefaultDrainTimeout;
  // What one handler lets clients make it hold (config.h has the reasons).
  size_t memory_quota = kMaxDefaultHandlerMemoryQuota;
  int max_connections = DefaultMaxConnections(kMaxDefaultHandlerMemoryQuota);
  int max_concurrent_streams = kDefaultMaxConcurrentStreams;
  absl::Duration handshake_timeout = kDefaultHandshakeTimeout;
  absl::Duration idle_timeout = kDefaultIdleTimeout;
  absl::Duration min_ping_interval = kDefaultMinPingInterval;
  // How often the serving loop beats its heartbeat even when idle.
  absl::Duration heartbeat_interval = HeartbeatInterval(kDefaultHandlerStallLimit);
  // countersd.durability turns NOT_SERVING past this lag.
  absl::Duration durability_lag_limit =
      DurabilityLagLimit(absl::ZeroDuration(), kDefaultSnapshotInterval);
  // --auth-file (empty: every call admitted) and the policy last loaded
  // from it; the handler re-reads the file on SIGHUP.
  std::string auth_file;
  std::shared_ptr<const AuthPolicy> auth_policy;
  // Where the handler counts its calls: row `stats_index` of the daemon's
  // stats area (null: not counted).
  const StatsArea* stats = nullptr;
  int stats_index = 0;
  // The data directory, which holds the handler's log of durable
  // writes (server/group_commit.h; empty: durable writes refused).
  std::string data_dir;

  // The options `config` gives a handler serving on `listen`.
  static HandlerOptions FromConfig(const Config& config, HandlerListen listen) {
    return {.listen = std::move(listen),
            .max_batch = config.max_batch,
            .drain_timeout = config.drain_timeout,
            .memory_quota = config.handler_memory_quota,
            .max_connections = config.max_connections,
            .max_concurrent_streams = config.max_concurrent_streams,
            .handshake_timeout = config.handshake_timeout,
            .idle_timeout = config.idle_timeout,
            .min_ping_interval = config.min_ping_interval,
            .heartbeat_interval = HeartbeatInterval(config.handler_stall_limit),
            .durability_lag_limit =
                DurabilityLagLimit(config.durability_lag_limit, config.snapshot_interval),
            .auth_file = config.auth_file,
            .auth_policy = config.auth_policy,
            .data_dir = config.data_dir};
  }
};

// Entry point of a forked handler process; returns its exit code: 0 after
// a drain on SIGTERM/SIGINT, 1 if the server could not start (e.g.
// EADDRINUSE) or the table has no free stats slot. REQUIRES: SIGTERM and
// SIGINT blocked, no gRPC object created in this process before.
int RunHandlerProcess(CounterTable* table, const HandlerOptions& options);

// RunHandlerProcess's type. The supervisor is given the entry point by
// main.cc instead of calling it, so that its library links no gRPC.
using HandlerProcessMain = int (*)(CounterTable* table, const HandlerOptions& options);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_HANDLER_PROCESS_H_
