// The harness's raw sockets and its side of /metrics (daemon_harness.h):
// a TCP connect that may fail (TryConnectTcp, under ConnectTcp too), the
// address the aggregator logs, and an HTTP/1.0 GET (tests only: the
// daemon's server is libmicrohttpd; this only reads one reply to EOF).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {

int TryConnectTcp(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  EXPECT_TRUE(colon != std::string::npos && absl::SimpleAtoi(address.substr(colon + 1), &port))
      << address;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0) << strerror(errno);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

std::string Daemon::metrics_address() {
  constexpr std::string_view kMsg = "metrics listening on ";
  if (!WaitForLog(kMsg, absl::Seconds(60))) {
    ADD_FAILURE() << "no \"metrics listening on\" line in the log:\n" << log();
    return "";
  }
  const std::string all = log();
  const size_t at = all.rfind(kMsg);
  const size_t end = all.find('"', at);
  return all.substr(at + kMsg.size(), end - at - kMsg.size());
}

absl::StatusOr<HttpResponse> HttpGet(const std::string& address, const std::string& target,
                                     absl::Duration timeout) {
  const absl::Time deadline = MonotonicNow() + timeout;
  const int fd = TryConnectTcp(address);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("connect ", address, ": ", strerror(errno)));
  }
  const std::string request =
      absl::StrCat("GET ", target, " HTTP/1.0\r\nHost: ", address, "\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("send to ", address, ": ", strerror(errno)));
  }
  std::string reply;
  char buf[16384];
  while (true) {
    const absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) {
      close(fd);
      return absl::DeadlineExceededError(absl::StrCat("GET ", target, " from ", address));
    }
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  // "HTTP/1.x NNN ...\r\n" headers "\r\n\r\n" body
  const size_t body = reply.find("\r\n\r\n");
  HttpResponse r;
  if (reply.compare(0, 5, "HTTP/") != 0 || reply.size() < 12 || body == std::string::npos ||
      !absl::SimpleAtoi(reply.substr(9, 3), &r.status)) {
    return absl::DataLossError(absl::StrCat("not an HTTP reply: ", reply.substr(0, 200)));
  }
  r.body = reply.substr(body + 4);
  return r;
}

}  // namespace countersd::testing
