// A unix socket that pre-forked handlers share: the supervisor creates,
// binds and listens on it before the fork, and every handler accepts from
// the inherited descriptor (ConnectionGate::Adopt). One bind per handler
// cannot work: each bind replaces the socket file, and the last handler to
// bind would serve everything.
//
// How Create works, step by step (REQUIRES: the data directory's lock is
// held, so no other countersd of this data directory is starting):
//  1. lstat the path. Nothing there: go on. A socket: connect to it; if
//     something accepts, another process serves it (another daemon with
//     another data directory): refuse. If the connect is refused, it is
//     stale (left by a crashed daemon): unlink it. Any other kind of file
//     (a regular file, a directory, a symlink): refuse, naming it; it is
//     never removed.
//  2. socket(AF_UNIX, SOCK_STREAM), bind under umask 0177 (so the file is
//     never more open than 0600, even for an instant), then chmod to
//     --unix-socket-mode and chown to --unix-socket-group, then listen.
//  3. The destructor closes it and unlinks the path if it still names the
//     socket it bound (same inode): a newer daemon's socket is left alone.
// gRPC-free.
#ifndef COUNTERSD_SERVER_UNIX_LISTENER_H_
#define COUNTERSD_SERVER_UNIX_LISTENER_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace countersd {

class UnixListener {
 public:
  // FAILED_PRECONDITION for a file that is not a socket, ALREADY_EXISTS for a
  // live socket; other errors name the failed call and the path.
  static absl::StatusOr<UnixListener> Create(const std::string& path, mode_t mode,
                                             std::optional<gid_t> group);
  UnixListener(UnixListener&& other) noexcept;
  UnixListener& operator=(UnixListener&&) = delete;
  ~UnixListener();  // step 3, in the process that created it

  int fd() const { return fd_; }  // listening, non-blocking, close-on-exec
  const std::string& path() const { return path_; }
  // Closes the descriptor without unlinking (a child that does not serve it).
  void CloseInChild();
  // Step 3 now (the supervisor at shutdown, once it stops serving it).
  void Close();

 private:
  UnixListener(int fd, std::string path, ino_t inode, pid_t owner)
      : fd_(fd), path_(std::move(path)), inode_(inode), owner_(owner) {}
  int fd_ = -1;
  std::string path_;
  ino_t inode_ = 0;
  pid_t owner_ = 0;  // only the creating process unlinks
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_UNIX_LISTENER_H_
