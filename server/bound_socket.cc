// An owned, bound socket and its address (bound_socket.h).
#include "server/bound_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/socket_address.h"
#include "shared/abseil_string_view.h"
#include "shared/sys.h"

namespace countersd {

BoundSocket::BoundSocket(BoundSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), address_(std::move(other.address_)) {}

BoundSocket& BoundSocket::operator=(BoundSocket&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    address_ = std::move(other.address_);
  }
  return *this;
}

BoundSocket::~BoundSocket() { Close(); }

absl::Status BoundSocket::ReadAddress(std::string_view what) {
  sockaddr_storage bound = {};
  socklen_t len = sizeof bound;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("getsockname(", Sv(what), ")"));
  }
  address_ = FormatSocketAddress(bound);
  return absl::OkStatus();
}

void BoundSocket::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace countersd
