// Who is at the other end of a unix-socket connection, per call: the peer
// uid the kernel recorded at connect (SO_PEERCRED), for the auth layer's
// uid: principals.
//
// How it works. Connections reach a handler's gRPC server through
// grpc::AddInsecureChannelFromFd, and gRPC 1.51 names the peer of such a
// connection "fd:<n>" in grpc::ServerContext::peer() (its endpoint's name;
// tests/server/peer_credentials_test.cc checks it on a real server). The
// accepting code (handler_listeners.cc) records, at each hand-over, what the
// descriptor n is: a unix connection with its peer uid (RecordUnixPeer), or
// a TCP one (ForgetPeer). An fd number names one open connection at a time,
// and gRPC closes it only once the transport, and so every call on it, is
// gone; so the entry for n, overwritten at each accept of a descriptor
// numbered n, is that of the call's connection. Connections gRPC accepts
// itself (the TLS listener) are named "ipv4:..." or "ipv6:...", never "fd:".
//
// Per process (each handler has its own descriptors); thread-safe: written
// by the accepting threads, read by the serving threads. gRPC-free.
#ifndef COUNTERSD_SERVER_PEER_CREDENTIALS_H_
#define COUNTERSD_SERVER_PEER_CREDENTIALS_H_

#include <sys/types.h>

#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace countersd {

// Reads `fd`'s SO_PEERCRED and records it as fd's unix peer. The error names
// the failed call (the entry is then forgotten, so the peer has no uid).
absl::Status RecordUnixPeer(int fd);
// Records that `fd` is not a unix connection (a TCP one was accepted on it).
void ForgetPeer(int fd);

// The peer uid of the call whose grpc::ServerContext::peer() is `peer`, if
// it came over a unix socket; nullopt otherwise (TCP, TLS, unknown).
std::optional<uid_t> UnixPeerUid(std::string_view peer);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_PEER_CREDENTIALS_H_
