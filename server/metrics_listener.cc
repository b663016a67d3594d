// The /metrics listening socket (metrics_listener.h).
#include "server/metrics_listener.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/socket_address.h"
#include "shared/sys.h"

namespace countersd {

absl::StatusOr<MetricsListener> MetricsListener::Listen(const std::string& address) {
  absl::StatusOr<SocketAddress> a = ParseSocketAddress(address);
  if (!a.ok()) return a.status();
  int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket(--metrics-listen)");
  BoundSocket owned(fd);  // closes fd on every return below
  int one = 1;            // an earlier run's connections in TIME_WAIT do not count
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a->addr), a->len) != 0) {
    if (errno == EADDRINUSE) {
      return absl::AlreadyExistsError(absl::StrCat(
          "--metrics-listen=", address,
          ": address already in use (another countersd or another program listens there; "
          "choose another port, or --metrics-listen= to serve no metrics)"));
    }
    return ErrnoToStatus(errno, absl::StrCat("bind(--metrics-listen=", address, ")"));
  }
  if (listen(fd, 64) != 0) return ErrnoToStatus(errno, "listen(--metrics-listen)");
  if (absl::Status s = owned.ReadAddress("--metrics-listen"); !s.ok()) return s;
  return MetricsListener(std::move(owned));
}

}  // namespace countersd
