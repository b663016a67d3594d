// Where a handler process takes its connections, and the one trade-off of
// the transport.
//
//  - Plaintext TCP addresses: a ConnectionGate each (connection_gate.h)
//    binds the shared port (SO_REUSEPORT), caps connections
//    (--max-connections), enforces --handshake-timeout and hands admitted
//    sockets to the server (grpc::AddInsecureChannelFromFd).
//  - Unix sockets: the supervisor's listening socket, inherited
//    (unix_listener.h); a gate each adopts it, so every handler accepts from
//    the one socket and the kernel gives each connection to one of them. At
//    each hand-over the peer's uid is recorded (peer_credentials.h).
//  - TLS on (--tls-cert-file): the TCP addresses are gRPC's own listening
//    ports (AddListeningPort with the TLS credentials; gRPC sets
//    SO_REUSEPORT, so every handler binds the same port), because gRPC
//    1.51's fd hand-off (grpc_server_add_channel_from_fd) accepts only
//    insecure credentials. The price: gRPC's own listener has no connection
//    cap in 1.51 (--max-connections does not apply to TLS listeners; cap
//    them in front, e.g. a firewall's connlimit), and it stops accepting
//    for good on EMFILE; its handshake deadline is
//    GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS = --handshake-timeout; and at
//    drain it stops accepting only at Server::Shutdown, not with the gates
//    (connections it takes meanwhile get UNAVAILABLE, like every new call
//    of a draining handler). Unix sockets stay plaintext and gated.
#ifndef COUNTERSD_SERVER_HANDLER_LISTENERS_H_
#define COUNTERSD_SERVER_HANDLER_LISTENERS_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "server/connection_gate.h"
#include "server/handler_process.h"

namespace countersd {

class HandlerListeners {
 public:
  // Before BuildAndStart: with TLS on, adds every TCP address to `builder`
  // as a TLS listening port, and the handshake deadline.
  static void AddTlsPorts(const HandlerOptions& options, grpc::ServerBuilder* builder);
  // File descriptors the gates may hold open (for RLIMIT_NOFILE; config.cc
  // checks the hard limit with GatedListenerCount, transport_config.h).
  static int MaxGatedConnections(const HandlerOptions& options);

  // After BuildAndStart: one gate per plaintext TCP address and per unix
  // socket, each on its own thread, handing connections to `server`.
  // Errors name the address; the gates already started are stopped.
  absl::Status Start(const HandlerOptions& options, grpc::Server* server);
  // Stops every gate and joins its thread; closes the listeners (this
  // process's copies). Idempotent.
  void Stop();
  // The gates' totals, summed.
  ConnectionGate::Counts counts() const { return counts_; }
  ~HandlerListeners() { Stop(); }

 private:
  std::vector<std::unique_ptr<ConnectionGate>> gates_;
  std::vector<std::thread> threads_;
  ConnectionGate::Counts counts_;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_HANDLER_LISTENERS_H_
