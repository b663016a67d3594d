// A handler's listeners (handler_listeners.h has which and why).
#include "server/handler_listeners.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "grpcpp/server_posix.h"
#include "server/peer_credentials.h"
#include "server/tls_server_credentials.h"
#include "shared/log.h"

namespace countersd {
namespace {

bool TlsOn(const HandlerOptions& o) { return !o.listen.tls_key_path.empty(); }

ConnectionGate::Options GateOptions(const HandlerOptions& o) {
  return {.max_connections = o.max_connections, .handshake_timeout = o.handshake_timeout};
}

}  // namespace

void HandlerListeners::AddTlsPorts(const HandlerOptions& options, grpc::ServerBuilder* builder) {
  if (!TlsOn(options)) return;
  std::shared_ptr<grpc::ServerCredentials> creds = MakeTlsServerCredentials(options.listen);
  for (const std::string& address : options.listen.tcp_addresses) {
    builder->AddListeningPort(address, creds);
  }
  builder->AddChannelArgument(
      GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
      static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(options.handshake_timeout),
                                         INT32_MAX)));
}

int HandlerListeners::MaxGatedConnections(const HandlerOptions& options) {
  size_t gates = options.listen.unix_fds.size();
  if (!TlsOn(options)) gates += options.listen.tcp_addresses.size();
  return static_cast<int>(std::min<int64_t>(
      INT32_MAX / 2, static_cast<int64_t>(std::max<size_t>(1, gates)) * options.max_connections));
}

absl::Status HandlerListeners::Start(const HandlerOptions& options, grpc::Server* server) {
  if (TlsOn(options)) {
    // gRPC's own TLS listener has no cap and stops accepting for good on
    // EMFILE (1.51): give it every descriptor the hard limit allows.
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
  } else {
    for (const std::string& address : options.listen.tcp_addresses) {
      absl::StatusOr<std::unique_ptr<ConnectionGate>> gate =
          ConnectionGate::Listen(address, GateOptions(options), [server](int fd) {
            ForgetPeer(fd);
            grpc::AddInsecureChannelFromFd(server, fd);
          });
      if (!gate.ok()) {
        Stop();
        return absl::Status(gate.status().code(),
                            absl::StrCat(address, ": ", gate.status().message()));
      }
      gates_.push_back(*std::move(gate));
    }
  }
  for (size_t i = 0; i < options.listen.unix_fds.size(); ++i) {
    absl::StatusOr<std::unique_ptr<ConnectionGate>> gate = ConnectionGate::Adopt(
        options.listen.unix_fds[i], GateOptions(options), [server](int fd) {
          if (absl::Status s = RecordUnixPeer(fd); !s.ok()) {
            Log(LogLevel::kWarning, "unix connection without peer credentials",
                {{"error", s.ToString()}});
          }
          grpc::AddInsecureChannelFromFd(server, fd);
        });
    if (!gate.ok()) {
      Stop();
      return absl::Status(gate.status().code(),
                          absl::StrCat("unix:", options.listen.unix_paths[i], ": ",
                                       gate.status().message()));
    }
    gates_.push_back(*std::move(gate));
  }
  for (std::unique_ptr<ConnectionGate>& gate : gates_) {
    threads_.emplace_back([g = gate.get()] { g->Run(); });
  }
  return absl::OkStatus();
}

void HandlerListeners::Stop() {
  for (std::unique_ptr<ConnectionGate>& gate : gates_) gate->Stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  for (std::unique_ptr<ConnectionGate>& gate : gates_) {
    ConnectionGate::Counts c = gate->counts();
    counts_.accepted += c.accepted;
    counts_.refused += c.refused;
    counts_.handshake_timeouts += c.handshake_timeouts;
    counts_.bad_prefaces += c.bad_prefaces;
  }
  gates_.clear();  // closes the listeners: no connection is handed over past here
}

}  // namespace countersd
