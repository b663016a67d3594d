#include "server/port_reservation.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/socket_address.h"
#include "shared/abseil_string_view.h"
#include "shared/sys.h"

namespace countersd {
namespace {

struct HostPort {
  std::string host;
  std::string port;
};

absl::StatusOr<HostPort> Split(std::string_view listen) {
  if (listen.substr(0, 5) == "unix:") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen=", Sv(listen),
        ": not a TCP address (unix sockets are made by the supervisor, unix_listener.h)"));
  }
  HostPort hp;
  std::string_view rest;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen=", Sv(listen), ": expected [ipv6-address]:port"));
    }
    hp.host = std::string(listen.substr(1, close - 1));
    rest = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen=", Sv(listen), ": expected host:port (e.g. 127.0.0.1:50051)"));
    }
    hp.host = std::string(listen.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen=", Sv(listen), ": put an IPv6 address in brackets, e.g. [::1]:50051"));
    }
    rest = listen.substr(colon + 1);
  }
  uint32_t port;
  if (!absl::SimpleAtoi(Sv(rest), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", Sv(listen), ": bad port '", Sv(rest), "' (0 to 65535)"));
  }
  if (hp.host.empty()) hp.host = "0.0.0.0";
  hp.port = absl::StrCat(port);
  return hp;
}

}  // namespace

absl::StatusOr<PortReservation> PortReservation::Reserve(std::string_view listen) {
  absl::StatusOr<HostPort> hp = Split(listen);
  if (!hp.ok()) return hp.status();

  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(hp->host.c_str(), hp->port.c_str(), &hints, &res); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--listen=", Sv(listen), ": cannot resolve '",
                                                   hp->host, "': ", gai_strerror(rc)));
  }
  sockaddr_storage addr = {};
  socklen_t addr_len = res->ai_addrlen;
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  int family = res->ai_family;
  freeaddrinfo(res);

  const int one = 1;
  if (hp->port != "0") {
    // 1. Probe: does anyone hold the port?
    int probe = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return ErrnoToStatus(errno, "socket(probe)");
    setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(probe, reinterpret_cast<sockaddr*>(&addr), addr_len);
    int err = errno;
    close(probe);
    if (rc != 0 && err == EADDRINUSE) {
      return absl::AlreadyExistsError(
          absl::StrCat("--listen=", Sv(listen),
                       ": address already in use by another process (is another "
                       "countersd running on this port?)"));
    }
    if (rc != 0) return ErrnoToStatus(err, absl::StrCat("bind(", Sv(listen), ")"));
  }

  // 2. Reserve it with SO_REUSEPORT, so the handlers can join.
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket(listen)");
  BoundSocket owned(fd);  // closes fd on every return below
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return ErrnoToStatus(errno, "setsockopt(SO_REUSEPORT)");
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    if (errno == EADDRINUSE) {
      return absl::AlreadyExistsError(
          absl::StrCat("--listen=", Sv(listen), ": address already in use by another process"));
    }
    return ErrnoToStatus(errno, absl::StrCat("bind(", Sv(listen), ")"));
  }
  if (absl::Status s = owned.ReadAddress("listen"); !s.ok()) return s;
  return PortReservation(std::move(owned));
}

}  // namespace countersd
