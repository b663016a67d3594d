// A socket the supervisor bound before the fork, owned: closed when the
// object goes (or by Close(), e.g. in a forked child that must not keep
// it), moved, never copied; and the numeric address it is bound to, with
// the port the kernel chose for port 0 (socket_address.h). The supervisor's
// listen-port reservation (port_reservation.h) and the /metrics socket
// (metrics_listener.h) each hold one. gRPC-free.
#ifndef COUNTERSD_SERVER_BOUND_SOCKET_H_
#define COUNTERSD_SERVER_BOUND_SOCKET_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace countersd {

class BoundSocket {
 public:
  BoundSocket() = default;
  explicit BoundSocket(int fd) : fd_(fd) {}  // takes `fd`; its address is read later
  BoundSocket(BoundSocket&& other) noexcept;
  BoundSocket& operator=(BoundSocket&& other) noexcept;
  ~BoundSocket();

  // Reads the address the socket is bound to (getsockname), once it is;
  // an error names the syscall and `what` (e.g. "--metrics-listen").
  absl::Status ReadAddress(std::string_view what);

  int fd() const { return fd_; }
  const std::string& address() const { return address_; }  // "127.0.0.1:50051", "[::1]:50051"
  void Close();

 private:
  int fd_ = -1;
  std::string address_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_BOUND_SOCKET_H_
