#include "shared/attach_grant.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace countersd {
namespace {

constexpr char kGrantMagic[8] = {'C', 'N', 'T', 'R', 'A', 'T', 'C', 'H'};
constexpr uint32_t kGrantVersion = 1;

// Host-native: both ends are on one host.
struct AttachGrantWire {
  char magic[8];
  uint32_t version;
  uint32_t pad;
  uint64_t incarnation;
  uint64_t map_dev;
  uint64_t map_ino;
  uint64_t staging_size;
};

}  // namespace

absl::Status SendAttachGrant(int connection_fd, const AttachGrant& grant) {
  AttachGrantWire w = {};
  std::memcpy(w.magic, kGrantMagic, sizeof w.magic);
  w.version = kGrantVersion;
  w.incarnation = grant.incarnation;
  w.map_dev = grant.map_dev;
  w.map_ino = grant.map_ino;
  w.staging_size = grant.staging_size;
  iovec iov = {&w, sizeof w};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &grant.staging_fd, sizeof(int));
  if (sendmsg(connection_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w)) {
    return absl::UnavailableError(absl::StrCat("sending the attach grant: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<AttachGrant> RequestAttachGrant(const std::string& socket_path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(
        absl::StrCat("attach socket path ", socket_path, " is longer than ",
                     sizeof addr.sun_path - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket(AF_UNIX): ", strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == EACCES || e == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot connect to ", socket_path, ": ", strerror(e),
          "; attaching needs the daemon's user or a member of its --attach-group"));
    }
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
      return absl::UnavailableError(absl::StrCat(
          "no countersd owns this data directory (", socket_path,
          e == ENOENT ? " does not exist" : " refuses connections",
          "): start the daemon first, or, if one runs, it has --attach=false"));
    }
    return absl::UnavailableError(absl::StrCat("connect(", socket_path, "): ", strerror(e)));
  }
  timeval tv = {.tv_sec = 2, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  AttachGrantWire w = {};
  iovec iov = {&w, sizeof w};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  int staging_fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len == CMSG_LEN(sizeof(int))) {
      std::memcpy(&staging_fd, CMSG_DATA(c), sizeof(int));
    }
  }
  if (n != static_cast<ssize_t>(sizeof w) || staging_fd < 0 ||
      std::memcmp(w.magic, kGrantMagic, sizeof w.magic) != 0 || w.version != kGrantVersion) {
    if (staging_fd >= 0) close(staging_fd);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return absl::UnavailableError(
          absl::StrCat("the daemon did not answer on ", socket_path, " within 2s"));
    }
    return absl::UnavailableError(absl::StrCat(
        "the daemon's answer on ", socket_path,
        " is not an attach grant this library understands (another countersd version?)"));
  }
  return AttachGrant{.incarnation = w.incarnation,
                     .map_dev = w.map_dev,
                     .map_ino = w.map_ino,
                     .staging_size = w.staging_size,
                     .staging_fd = staging_fd};
}

}  // namespace countersd
