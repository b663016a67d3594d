// Holding the listen port for the daemon's lifetime without serving on it.
//
// Every handler binds the same address with SO_REUSEPORT (its
// ConnectionGate, connection_gate.h), and the kernel spreads connections
// over them. That also means a second
// countersd of the same user could silently share the port. So, before it
// forks, the supervisor:
//   1. binds a probe socket to the address WITHOUT SO_REUSEPORT (with
//      SO_REUSEADDR, so connections of an earlier run in TIME_WAIT do not
//      count). EADDRINUSE means someone else owns the port: fail at start.
//      (Skipped for port 0.)
//   2. binds a socket WITH SO_REUSEPORT (and without SO_REUSEADDR) and keeps
//      it open, never calling listen(), for as long as it lives. Port 0 is
//      resolved to the port the kernel chose. A later daemon's probe (1)
//      collides with this socket even before any handler listens.
//   3. hands the resolved numeric address (socket_address.h) to the
//      handlers, which bind it with SO_REUSEPORT and join the same port.
#ifndef COUNTERSD_SERVER_PORT_RESERVATION_H_
#define COUNTERSD_SERVER_PORT_RESERVATION_H_

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "server/bound_socket.h"

namespace countersd {

class PortReservation {
 public:
  // `listen` is host:port or [ipv6]:port (host may be a name; the first
  // address it resolves to is used; an empty host means 0.0.0.0).
  // INVALID_ARGUMENT for a malformed address (or a unix: one: those are
  // UnixListener's), ALREADY_EXISTS with a clear message
  // if another process holds the port, other errors naming the syscall.
  static absl::StatusOr<PortReservation> Reserve(std::string_view listen);

  // Numeric address with the real port (socket_address.h):
  // "127.0.0.1:50051", "[::1]:50051".
  const std::string& address() const { return socket_.address(); }
  // Closes the socket (e.g. in a forked child, which must not keep it).
  void Close() { socket_.Close(); }

 private:
  explicit PortReservation(BoundSocket socket) : socket_(std::move(socket)) {}
  BoundSocket socket_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_PORT_RESERVATION_H_
