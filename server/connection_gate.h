// The handler's own listening socket: it accepts client connections, caps
// how many are open, waits for each one's HTTP/2 preface with a deadline,
// and only then hands the socket to gRPC. See connection_gate.cc for how.
//
// Why not gRPC's listener: gRPC 1.51 has no cap on connections (its
// "grpc.max_allowed_incoming_connections" came later), and when accept4
// fails with EMFILE its listener stops accepting for good. So the handler
// binds the port itself and gives gRPC only connections it has admitted,
// through grpc::AddInsecureChannelFromFd (which skips gRPC's handshake and
// hence GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS: the gate's deadline replaces it).
//
// gRPC-free, like the rest of what the supervisor may include.
#ifndef COUNTERSD_SERVER_CONNECTION_GATE_H_
#define COUNTERSD_SERVER_CONNECTION_GATE_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace countersd {

class ConnectionGate {
 public:
  struct Options {
    int max_connections = 1;  // open connections, handshaking or handed over
    absl::Duration handshake_timeout = absl::Seconds(5);
  };
  // Totals since Listen, for logs and tests.
  struct Counts {
    uint64_t accepted = 0;            // handed to gRPC
    uint64_t refused = 0;             // over max_connections: reset at accept
    uint64_t handshake_timeouts = 0;  // no preface + SETTINGS in time: closed
    uint64_t bad_prefaces = 0;        // not HTTP/2, or the peer closed first: closed
  };

  // Binds `address` (numeric "1.2.3.4:port" or "[::1]:port") with
  // SO_REUSEPORT and SO_REUSEADDR, as gRPC's listener does, so every handler
  // shares the port, and listens. `hand_over` is called on Run's thread with
  // each admitted socket (non-blocking, TCP_NODELAY) and owns it from then
  // on. Errors name the failed call.
  static absl::StatusOr<std::unique_ptr<ConnectionGate>> Listen(const std::string& address,
                                                                Options options,
                                                                std::function<void(int fd)> hand_over);
  // Like Listen, on a socket already listening (non-blocking): a unix socket
  // the supervisor created and this process inherited (unix_listener.h).
  // Takes ownership of `listen_fd` (closed on failure too).
  static absl::StatusOr<std::unique_ptr<ConnectionGate>> Adopt(
      int listen_fd, Options options, std::function<void(int fd)> hand_over);
  ~ConnectionGate();  // closes the listener and the sockets not handed over
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // Accepts and admits connections until Stop(). REQUIRES: one thread, once.
  void Run();
  // Makes Run return soon; callable from any thread. Connections already
  // handed over stay gRPC's.
  void Stop();
  Counts counts() const;

 private:
  struct Pending {
    absl::Time deadline;
  };
  ConnectionGate(int listen_fd, int epoll_fd, int wake_fd, Options options,
                 std::function<void(int)> hand_over);
  void AcceptAll();
  void OnReadable(int fd);
  void ExpireHandshakes(absl::Time now);
  void Close(int fd, bool reset);
  int OpenConnections();  // handshaking + handed over and still open (sweeps)
  void MaybeLogRefusals(absl::Time now);

  const int listen_fd_;
  const int epoll_fd_;
  const int wake_fd_;
  const Options options_;
  const std::function<void(int)> hand_over_;

  // Run's thread only.
  std::vector<absl::Time> pending_deadline_;  // by fd; InfiniteFuture = not pending
  std::vector<std::pair<absl::Time, int>> pending_fifo_;  // (deadline, fd), oldest first
  size_t pending_head_ = 0;
  int pending_count_ = 0;
  std::vector<std::pair<int, ino_t>> handed_over_;  // (fd, socket inode)
  absl::Time last_sweep_ = absl::InfinitePast();
  absl::Time accept_paused_until_ = absl::InfinitePast();
  absl::Time last_refusal_log_ = absl::InfinitePast();
  uint64_t refused_logged_ = 0;

  std::atomic<uint64_t> accepted_{0}, refused_{0}, handshake_timeouts_{0}, bad_prefaces_{0};
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_CONNECTION_GATE_H_
