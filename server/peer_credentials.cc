// The per-process map fd -> unix peer uid (peer_credentials.h has why it is
// right).
#include "server/peer_credentials.h"

#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "shared/abseil_string_view.h"
#include "shared/sys.h"

namespace countersd {
namespace {

constexpr std::string_view kFdPeerPrefix = "fd:";

struct PeerMap {
  absl::Mutex mu;
  std::vector<std::optional<uid_t>> uid_by_fd ABSL_GUARDED_BY(mu);
};

PeerMap& Map() {
  static PeerMap* const map = new PeerMap;
  return *map;
}

void Set(int fd, std::optional<uid_t> uid) {
  if (fd < 0) return;
  PeerMap& m = Map();
  absl::MutexLock lock(&m.mu);
  if (static_cast<size_t>(fd) >= m.uid_by_fd.size()) {
    if (!uid) return;
    m.uid_by_fd.resize(fd + 1);
  }
  m.uid_by_fd[fd] = uid;
}

}  // namespace

absl::Status RecordUnixPeer(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    int err = errno;
    Set(fd, std::nullopt);
    return ErrnoToStatus(err, "getsockopt(SO_PEERCRED)");
  }
  Set(fd, cred.uid);
  return absl::OkStatus();
}

void ForgetPeer(int fd) { Set(fd, std::nullopt); }

std::optional<uid_t> UnixPeerUid(std::string_view peer) {
  if (peer.substr(0, kFdPeerPrefix.size()) != kFdPeerPrefix) return std::nullopt;
  int fd = -1;
  if (!absl::SimpleAtoi(Sv(peer.substr(kFdPeerPrefix.size())), &fd) || fd < 0) return std::nullopt;
  PeerMap& m = Map();
  absl::ReaderMutexLock lock(&m.mu);
  if (static_cast<size_t>(fd) >= m.uid_by_fd.size()) return std::nullopt;
  return m.uid_by_fd[fd];
}

}  // namespace countersd
