// The /metrics listening socket (metrics_listener.h).
#include "server/metrics_listener.h"

#include <sys/socket.h>
#include <unistd.h>

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
  MetricsListener l(fd, address);  // closes fd on every return below
  int one = 1;                     // an earlier run's connections in TIME_WAIT do not count
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
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return ErrnoToStatus(errno, "getsockname(--metrics-listen)");
  }
  l.address_ = FormatSocketAddress(bound);
  return l;
}

MetricsListener::MetricsListener(MetricsListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), address_(std::move(other.address_)) {}

MetricsListener& MetricsListener::operator=(MetricsListener&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    address_ = std::move(other.address_);
  }
  return *this;
}

MetricsListener::~MetricsListener() { Close(); }

void MetricsListener::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace countersd
