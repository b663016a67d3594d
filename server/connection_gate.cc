// ConnectionGate: admission of client connections before gRPC sees them.
//
// How it works, step by step (one thread, one epoll set):
//  1. Listen binds the handler's own socket on the shared port
//     (SO_REUSEPORT: the kernel spreads new connections over the handlers)
//     and puts it, and an eventfd for Stop, in an epoll set.
//  2. On a readable listener, accept4 until EAGAIN. A connection that would
//     make more than max_connections open is refused: SO_LINGER 0 and
//     close, so the client sees a reset at once instead of a hang. Open
//     means handshaking here plus handed to gRPC and not yet closed by it.
//     gRPC closes sockets without telling us, so the handed-over list holds
//     (fd, socket inode) and is swept (fstat) when the count reaches the
//     cap: an fd that is closed, or now names another file, is gone. Sweeps
//     are at most one per 10 ms, so a flood of refused connects stays cheap.
//     While any is handed over, a sweep also runs every kOpenSweepInterval,
//     so that the open count published in the stats falls when clients go.
//  3. An admitted connection waits, edge-triggered in the epoll set, until
//     MSG_PEEK shows the whole HTTP/2 client preface: the 24-byte magic and
//     a complete SETTINGS frame (RFC 9113 section 3.4). Nothing is consumed:
//     gRPC reads the same bytes. Then the socket leaves the set and is
//     handed to gRPC (grpc::AddInsecureChannelFromFd in handler_process.cc).
//  4. A connection without its preface by handshake_timeout after accept is
//     closed (the slowloris and idle-socket patterns); one that is not
//     HTTP/2 or closes first is closed at once. The deadlines are in accept
//     order, since they are accept time + one timeout: a FIFO, no heap.
//  5. EMFILE and the like at accept pause accepting for 100 ms (the
//     listener leaves the set) instead of spinning; the backlog waits.
//  6. The counts (accepted, refused, timed out, open) go to
//     options.on_counts when they changed: the handler's stats slot, read
//     by GetStats (layout.h, ProcessSlot invariant 4). Before a socket is
//     handed over or closed, so the client cannot see the outcome before
//     its count; and at each turn of the loop, for what a sweep found.
#include "server/connection_gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/socket_address.h"
#include "shared/log.h"
#include "shared/monotonic_time.h"
#include "shared/sys.h"

namespace countersd {
namespace {

constexpr char kPrefaceMagic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kMagicSize = sizeof kPrefaceMagic - 1;  // 24
constexpr size_t kFrameHeaderSize = 9;
constexpr uint8_t kSettingsFrame = 0x4;
constexpr uint8_t kAckFlag = 0x1;
// The largest first SETTINGS frame accepted: the default
// SETTINGS_MAX_FRAME_SIZE, which a client may not exceed before our
// SETTINGS reach it. Real clients send a few dozen bytes.
constexpr size_t kMaxSettingsPayload = 16384;
constexpr absl::Duration kSweepInterval = absl::Milliseconds(10);
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);
constexpr absl::Duration kRefusalLogInterval = absl::Seconds(1);

// The inode of the socket `fd` names, or 0 if it names no socket.
ino_t SocketInode(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  return st.st_ino;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionGate>> ConnectionGate::Listen(
    const std::string& address, Options options, std::function<void(int fd)> hand_over) {
  absl::StatusOr<SocketAddress> parsed = ParseSocketAddress(address);
  if (!parsed.ok()) return parsed.status();
  sockaddr_storage addr = parsed->addr;
  const socklen_t addr_len = parsed->len;
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket(listen)");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int err = errno;
    close(fd);
    return ErrnoToStatus(err, "setsockopt(SO_REUSEADDR, SO_REUSEPORT)");
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    int err = errno;
    close(fd);
    return ErrnoToStatus(err, absl::StrCat("bind(", address, ")"));
  }
  if (listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    close(fd);
    return ErrnoToStatus(err, absl::StrCat("listen(", address, ")"));
  }
  return Adopt(fd, options, std::move(hand_over));
}

absl::StatusOr<std::unique_ptr<ConnectionGate>> ConnectionGate::Adopt(
    int fd, Options options, std::function<void(int fd)> hand_over) {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd < 0 || wake_fd < 0) {
    int err = errno;
    close(fd);
    if (epoll_fd >= 0) close(epoll_fd);
    if (wake_fd >= 0) close(wake_fd);
    return ErrnoToStatus(err, "epoll_create1/eventfd");
  }
  for (int watched : {fd, wake_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = watched;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, watched, &ev) != 0) {
      int err = errno;
      close(fd);
      close(epoll_fd);
      close(wake_fd);
      return ErrnoToStatus(err, "epoll_ctl(ADD)");
    }
  }
  return std::unique_ptr<ConnectionGate>(
      new ConnectionGate(fd, epoll_fd, wake_fd, options, std::move(hand_over)));
}

ConnectionGate::ConnectionGate(int listen_fd, int epoll_fd, int wake_fd, Options options,
                               std::function<void(int)> hand_over)
    : listen_fd_(listen_fd),
      epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      options_(options),
      hand_over_(std::move(hand_over)) {}

ConnectionGate::~ConnectionGate() {
  for (int fd = 0; fd < static_cast<int>(pending_deadline_.size()); ++fd) {
    if (pending_deadline_[fd] != absl::InfiniteFuture()) close(fd);
  }
  close(listen_fd_);
  close(epoll_fd_);
  close(wake_fd_);
}

void ConnectionGate::Stop() {
  uint64_t one = 1;
  // A full eventfd counter is already a wake-up.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

ConnectionGate::Counts ConnectionGate::counts() const {
  return {.accepted = accepted_.load(std::memory_order_relaxed),
          .refused = refused_.load(std::memory_order_relaxed),
          .handshake_timeouts = handshake_timeouts_.load(std::memory_order_relaxed),
          .bad_prefaces = bad_prefaces_.load(std::memory_order_relaxed),
          .open = open_.load(std::memory_order_relaxed)};
}

void ConnectionGate::PublishIfChanged() {
  open_.store(pending_count_ + static_cast<int>(handed_over_.size()), std::memory_order_relaxed);
  Counts now = counts();
  if (now == published_) return;
  published_ = now;
  if (options_.on_counts) options_.on_counts(now);
}

void ConnectionGate::Run() {
  epoll_event events[256];
  for (;;) {
    absl::Time now = MonotonicNow();
    if (accept_paused_until_ != absl::InfinitePast() && now >= accept_paused_until_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = listen_fd_;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
      accept_paused_until_ = absl::InfinitePast();
    }
    if (!handed_over_.empty() && now - last_sweep_ >= kOpenSweepInterval) SweepHandedOver(now);
    PublishIfChanged();
    absl::Time wake = absl::InfiniteFuture();
    if (pending_head_ < pending_fifo_.size()) wake = pending_fifo_[pending_head_].first;
    if (!handed_over_.empty()) wake = std::min(wake, last_sweep_ + kOpenSweepInterval);
    if (accept_paused_until_ != absl::InfinitePast()) wake = std::min(wake, accept_paused_until_);
    int timeout_ms = -1;
    if (wake != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(
          std::clamp<int64_t>(absl::ToInt64Milliseconds(wake - now) + 1, 0, 60000));
    }
    int n = epoll_wait(epoll_fd_, events, 256, timeout_ms);
    if (n < 0 && errno != EINTR) {
      Log(LogLevel::kError, "connection gate: epoll_wait failed", {{"error", strerror(errno)}});
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) return;
      if (fd == listen_fd_) {
        AcceptAll();
      } else {
        OnReadable(fd);
      }
    }
    ExpireHandshakes(MonotonicNow());
  }
}

int ConnectionGate::OpenConnections() {
  int open = pending_count_ + static_cast<int>(handed_over_.size());
  absl::Time now = MonotonicNow();
  if (open < options_.max_connections || now - last_sweep_ < kSweepInterval) return open;
  SweepHandedOver(now);
  return pending_count_ + static_cast<int>(handed_over_.size());
}

void ConnectionGate::SweepHandedOver(absl::Time now) {
  last_sweep_ = now;
  std::erase_if(handed_over_, [](const std::pair<int, ino_t>& c) {
    return SocketInode(c.first) != c.second;
  });
}

void ConnectionGate::AcceptAll() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the backlog waits; try again soon.
      Log(LogLevel::kWarning, "connection gate: accept4 failed; pausing accepts",
          {{"error", strerror(errno)}});
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
      accept_paused_until_ = MonotonicNow() + kAcceptPause;
      return;
    }
    if (OpenConnections() >= options_.max_connections) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      Close(fd, /*reset=*/true);
      MaybeLogRefusals(MonotonicNow());
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (static_cast<size_t>(fd) >= pending_deadline_.size()) {
      pending_deadline_.resize(fd + 1, absl::InfiniteFuture());
    }
    absl::Time deadline = MonotonicNow() + options_.handshake_timeout;
    pending_deadline_[fd] = deadline;
    pending_fifo_.emplace_back(deadline, fd);
    ++pending_count_;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    // Adding a socket that is already readable reports it at once.
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) Close(fd, /*reset=*/true);
  }
}

void ConnectionGate::OnReadable(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= pending_deadline_.size() ||
      pending_deadline_[fd] == absl::InfiniteFuture()) {
    return;  // handed over or closed since the event was queued
  }
  char buf[kMagicSize + kFrameHeaderSize + kMaxSettingsPayload];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  auto bad = [&] {
    bad_prefaces_.fetch_add(1, std::memory_order_relaxed);
    Close(fd, /*reset=*/false);
  };
  if (n <= 0) return bad();  // closed by the peer, or an error
  size_t got = static_cast<size_t>(n);
  if (std::memcmp(buf, kPrefaceMagic, std::min(got, kMagicSize)) != 0) return bad();
  if (got < kMagicSize + kFrameHeaderSize) return;
  const auto* h = reinterpret_cast<const unsigned char*>(buf + kMagicSize);
  size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
  uint32_t stream = ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) |
                     h[8]) & 0x7fffffff;
  if (h[3] != kSettingsFrame || (h[4] & kAckFlag) != 0 || stream != 0 || length % 6 != 0 ||
      length > kMaxSettingsPayload) {
    return bad();
  }
  if (got < kMagicSize + kFrameHeaderSize + length) return;
  // The whole preface is there: gRPC's from now on.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  pending_deadline_[fd] = absl::InfiniteFuture();
  --pending_count_;
  handed_over_.emplace_back(fd, SocketInode(fd));
  accepted_.fetch_add(1, std::memory_order_relaxed);
  PublishIfChanged();  // so a client's own GetStats counts its connection
  hand_over_(fd);
}

void ConnectionGate::ExpireHandshakes(absl::Time now) {
  while (pending_head_ < pending_fifo_.size() && pending_fifo_[pending_head_].first <= now) {
    auto [deadline, fd] = pending_fifo_[pending_head_++];
    // A stale entry: that fd was handed over or closed (and maybe reused).
    if (pending_deadline_[fd] != deadline) continue;
    handshake_timeouts_.fetch_add(1, std::memory_order_relaxed);
    Close(fd, /*reset=*/false);
  }
  if (pending_head_ > 1024 && pending_head_ * 2 > pending_fifo_.size()) {
    pending_fifo_.erase(pending_fifo_.begin(), pending_fifo_.begin() + pending_head_);
    pending_head_ = 0;
  }
}

void ConnectionGate::Close(int fd, bool reset) {
  if (reset) {
    linger l{.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  if (static_cast<size_t>(fd) < pending_deadline_.size() &&
      pending_deadline_[fd] != absl::InfiniteFuture()) {
    pending_deadline_[fd] = absl::InfiniteFuture();
    --pending_count_;
  }
  // Before the peer sees the reset or EOF: a client that then asks GetStats
  // finds its refusal or timeout counted.
  PublishIfChanged();
  close(fd);  // also leaves the epoll set
}

void ConnectionGate::MaybeLogRefusals(absl::Time now) {
  if (now - last_refusal_log_ < kRefusalLogInterval) return;
  last_refusal_log_ = now;
  uint64_t refused = refused_.load(std::memory_order_relaxed);
  Log(LogLevel::kWarning, "refusing connections: --max-connections reached",
      {{"max_connections", options_.max_connections},
       {"refused_since_last_line", static_cast<int64_t>(refused - refused_logged_)},
       {"refused_total", static_cast<int64_t>(refused)}});
  refused_logged_ = refused;
}

}  // namespace countersd
