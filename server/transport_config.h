// The transport's flags: where countersd listens (--listen, TCP addresses
// and unix sockets), TLS and mTLS, the unix socket's permissions, and
// protected mode. Defined, read and validated in transport_config.cc; listed
// in --help by config.cc with the other flags. gRPC-free (the supervisor
// includes it).
//
// Protected mode (Redis's): a TCP address beyond loopback (not 127.0.0.0/8
// nor ::1; unix sockets are local) with neither TLS (--tls-cert-file) nor an
// auth file (--auth-file) is refused at start, with how to fix it, unless
// --allow-unauthenticated-network-access is given; the supervisor then logs
// a warning at every start (ProtectedModeWarning).
#ifndef COUNTERSD_SERVER_TRANSPORT_CONFIG_H_
#define COUNTERSD_SERVER_TRANSPORT_CONFIG_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/config.h"

namespace countersd {

inline constexpr std::string_view kUnixPrefix = "unix:";

// One entry of --listen.
struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string address;  // kTcp: host:port or [v6]:port; kUnix: the socket's path
};

// Splits --listen at commas. INVALID_ARGUMENT for an empty entry, a unix:
// path that is not absolute or too long for sun_path, or the same address
// twice. TCP entries are checked when they are reserved (port_reservation.h).
absl::StatusOr<std::vector<ListenAddress>> ParseListenList(std::string_view listen);

// Whether `host_port`'s host resolves only to loopback addresses
// (127.0.0.0/8, ::1). An empty host (every interface) is not loopback.
bool IsLoopbackOnly(const std::string& host_port);

// Reads the transport flags into `config`. INVALID_ARGUMENT naming the flag
// for a value that does not parse (e.g. --unix-socket-mode=999).
absl::Status ReadTransportFlags(Config* config);

// Checks the transport settings of `config` that need no file: --listen's
// form, TLS flags given together, a known --unix-socket-group, the reload
// interval, and protected mode (the refusal says how to fix it).
// INVALID_ARGUMENT naming the flag.
absl::Status ValidateTransportConfig(const Config& config);

// The gid a group flag (--unix-socket-group, --attach-group) names (a
// group name or a number), or nullopt when it is empty. NOT_FOUND naming
// the flag if there is no such group.
absl::StatusOr<std::optional<gid_t>> LookUpGroup(std::string_view flag, const std::string& group);

// How many listeners of each handler --max-connections caps: each unix
// socket, and each TCP address unless TLS is on (handler_listeners.h). At
// least 1 (what the RLIMIT_NOFILE check multiplies by).
int GatedListenerCount(const Config& config);

// The warning the supervisor logs at start when protected mode is waived
// for some address, or nullopt when it is not.
std::optional<std::string> ProtectedModeWarning(const Config& config);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_TRANSPORT_CONFIG_H_
