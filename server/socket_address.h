// The numeric form of a listening address ("127.0.0.1:50051",
// "[::1]:50051"): the supervisor resolves --listen once (port_reservation.h)
// and hands this form to every handler, which binds it again
// (connection_gate.h). Format and Parse are each other's inverse, in one
// place. gRPC-free.
#ifndef COUNTERSD_SERVER_SOCKET_ADDRESS_H_
#define COUNTERSD_SERVER_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"

namespace countersd {

struct SocketAddress {
  sockaddr_storage addr;
  socklen_t len;
};

// "a.b.c.d:port" for AF_INET, "[v6]:port" for AF_INET6.
std::string FormatSocketAddress(const sockaddr_storage& ss);

// The inverse of FormatSocketAddress: numeric hosts only, no name lookup.
// INVALID_ARGUMENT naming the address otherwise.
absl::StatusOr<SocketAddress> ParseSocketAddress(const std::string& address);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_SOCKET_ADDRESS_H_
