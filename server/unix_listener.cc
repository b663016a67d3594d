// The supervisor's unix socket (unix_listener.h has how it works).
#include "server/unix_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "shared/log.h"
#include "shared/sys.h"

namespace countersd {
namespace {

sockaddr_un AddressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
  return addr;
}

// Step 1: whether something serves the socket at `path`.
bool SomeoneListens(const sockaddr_un& addr) {
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  bool live = connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ||
              errno == EAGAIN;  // a full backlog is a live listener too
  close(probe);
  return live;
}

}  // namespace

absl::StatusOr<UnixListener> UnixListener::Create(const std::string& path, mode_t mode,
                                                  std::optional<gid_t> group) {
  const sockaddr_un addr = AddressOf(path);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {  // 1.
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--listen=unix:", path, ": the path exists and is not a socket; countersd does not "
          "remove it: move it away or choose another path"));
    }
    if (SomeoneListens(addr)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "--listen=unix:", path, ": another process serves this socket (is another countersd "
          "running with another --data-dir?)"));
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoToStatus(errno, absl::StrCat("unlink(stale socket ", path, ")"));
    }
    Log(LogLevel::kInfo, "replaced a stale unix socket file", {{"path", path}});
  } else if (errno != ENOENT) {
    return ErrnoToStatus(errno, absl::StrCat("lstat(", path, ")"));
  }

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);  // 2.
  if (fd < 0) return ErrnoToStatus(errno, "socket(AF_UNIX)");
  auto fail = [&](const std::string& call) {
    int err = errno;
    close(fd);
    return ErrnoToStatus(err, absl::StrCat(call, "(", path, ")"));
  };
  mode_t old_umask = umask(0177);
  int rc = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  umask(old_umask);
  if (rc != 0) return fail("bind");
  if (chmod(path.c_str(), mode) != 0) return fail("chmod");
  if (group && chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) return fail("chown");
  if (listen(fd, SOMAXCONN) != 0) return fail("listen");
  if (stat(path.c_str(), &st) != 0) return fail("stat");
  return UnixListener(fd, path, st.st_ino, getpid());
}

UnixListener::UnixListener(UnixListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      inode_(other.inode_),
      owner_(std::exchange(other.owner_, 0)) {}

UnixListener::~UnixListener() { Close(); }

void UnixListener::Close() {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
  struct stat st;
  if (owner_ == getpid() && lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
      st.st_ino == inode_) {
    unlink(path_.c_str());
  }
}

void UnixListener::CloseInChild() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace countersd
