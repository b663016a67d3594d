// The /metrics endpoint's listening socket, bound and listening in the
// supervisor before it forks, so that a bad or busy --metrics-listen stops
// the daemon at start (not a crash-looping aggregator), and so that a
// respawned aggregator serves the same port. The aggregator inherits the
// socket and hands it to its HTTP server (metrics_server.h); the handlers
// close it after the fork. Without SO_REUSEPORT: a second daemon on the
// same address gets EADDRINUSE. gRPC-free.
#ifndef COUNTERSD_SERVER_METRICS_LISTENER_H_
#define COUNTERSD_SERVER_METRICS_LISTENER_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "server/bound_socket.h"

namespace countersd {

class MetricsListener {
 public:
  // Binds and listens on `address` (numeric host:port or [v6]:port, as
  // --metrics-listen was checked; port 0: any free port).
  // ALREADY_EXISTS naming the address when it is in use, other errors
  // naming the syscall.
  static absl::StatusOr<MetricsListener> Listen(const std::string& address);

  int fd() const { return socket_.fd(); }
  // The bound address with the real port ("127.0.0.1:50052").
  const std::string& address() const { return socket_.address(); }
  // Closes the socket (a handler after the fork).
  void Close() { socket_.Close(); }

 private:
  explicit MetricsListener(BoundSocket socket) : socket_(std::move(socket)) {}
  BoundSocket socket_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_METRICS_LISTENER_H_
