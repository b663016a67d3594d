#include "server/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace countersd {

std::string FormatSocketAddress(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return absl::StrCat("[", buf, "]:", ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  return absl::StrCat(buf, ":", ntohs(a->sin_port));
}

absl::StatusOr<SocketAddress> ParseSocketAddress(const std::string& address) {
  const absl::Status bad =
      absl::InvalidArgumentError(absl::StrCat("not a numeric host:port: ", address));
  const size_t colon = address.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port > 65535) {
    return bad;
  }
  const std::string host = address.substr(0, colon);
  SocketAddress out;
  std::memset(&out.addr, 0, sizeof out.addr);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) != 1) {
      return bad;
    }
    out.len = sizeof *v6;
    return out;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) return bad;
  out.len = sizeof *v4;
  return out;
}

}  // namespace countersd
