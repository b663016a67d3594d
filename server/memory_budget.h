// A handler's memory budget, from the memory the process may use: the
// defaults of --handler-memory-quota and --max-connections (config.h's
// flags), the container's cgroup v2 memory.max or the host's memory; and
// the other limits on what clients may make a handler hold. Beside
// cpu_budget.h, which sizes the default --handlers the same way.
#ifndef COUNTERSD_SERVER_MEMORY_BUDGET_H_
#define COUNTERSD_SERVER_MEMORY_BUDGET_H_

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace countersd {

// Limits on what clients may make a handler hold (issue 11). The memory
// sizes below are derived from the memory this process may use
// (MemoryLimitBytes); the reasons are in memory_budget.cc, next to the code.
//
// HTTP/2 streams a client may have open at once on one connection. 100 is
// the smallest value RFC 9113 recommends; a unary call here lasts
// microseconds, so a client needs more connections, not more streams.
inline constexpr int kDefaultMaxConcurrentStreams = 100;
inline constexpr int kMaxConcurrentStreamsLimit = 100000;
// How long a connection may take from accept to its HTTP/2 preface and first
// SETTINGS frame, which a real client sends at once.
inline constexpr absl::Duration kDefaultHandshakeTimeout = absl::Seconds(5);
// A connection with no call for this long is closed (GOAWAY first); clients
// reconnect when they next call.
inline constexpr absl::Duration kDefaultIdleTimeout = absl::Minutes(5);
// Pings without data more often than this count as strikes; after
// kMaxPingStrikes the connection gets GOAWAY (too_many_pings). Clients whose
// keepalive time is at least this are never struck.
inline constexpr absl::Duration kDefaultMinPingInterval = absl::Seconds(10);
inline constexpr int kMaxPingStrikes = 2;  // gRPC's own default
// The handler's estimate of what one open connection costs it in gRPC's
// buffers (transport, read buffer, HPACK tables): the default
// --max-connections is the memory quota divided by this.
inline constexpr size_t kConnectionCostEstimate = 16 * 1024;
// File descriptors a handler needs besides its client connections (gRPC's
// own, the table, the listener, epoll).
inline constexpr int kReservedFds = 256;
// The bounds of --handler-memory-quota.
inline constexpr size_t kMinHandlerMemoryQuota = 4 * 1024 * 1024;
inline constexpr size_t kMaxDefaultHandlerMemoryQuota = 32 * 1024 * 1024;

// The memory this process may use: its cgroup v2 memory.max (from
// /proc/self/cgroup and /sys/fs/cgroup), or, with no such limit, the host's
// physical memory.
uint64_t MemoryLimitBytes();
// The default --handler-memory-quota for a process that may use
// `memory_limit` bytes: memory_limit / 32, within [4 MiB, 32 MiB].
size_t DefaultHandlerMemoryQuota(uint64_t memory_limit);
// The default --max-connections for a handler with that memory quota.
int DefaultMaxConnections(size_t handler_memory_quota);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_MEMORY_BUDGET_H_
