// The supervisor's listeners (Start's step 2b, supervisor.cc): the unix
// sockets and the /metrics socket it creates before the fork, the TLS files'
// checked copy, and what each handler is given to listen on. Part of Supervisor; no gRPC.
#include <optional>
#include <string>
#include <vector>

#include "server/supervisor.h"
#include "server/transport_config.h"
#include "shared/monotonic_time.h"
#include "shared/status_macros.h"

namespace countersd {

absl::Status Supervisor::StartListeners() {
  ASSIGN_OR_RETURN(std::vector<ListenAddress> listen, ParseListenList(config_.listen));
  ASSIGN_OR_RETURN(std::optional<gid_t> group, LookUpGroup("unix-socket-group", config_.unix_socket_group));
  for (const ListenAddress& a : listen) {
    if (a.kind != ListenAddress::Kind::kUnix) continue;
    ASSIGN_OR_RETURN(UnixListener socket,
                     UnixListener::Create(a.address, config_.unix_socket_mode, group));
    unix_sockets_.push_back(std::move(socket));
  }
  const TlsFiles files = TlsFilesOf(config_);
  if (files.enabled()) {
    // Checked at flag parsing already (exit 2); read again, as served.
    ASSIGN_OR_RETURN(TlsMaterial material, ReadTlsFiles(files));
    ASSIGN_OR_RETURN(TlsStaging staging, TlsStaging::Create(config_.data_dir, files, material));
    tls_.emplace(std::move(staging));
    next_tls_poll_ = MonotonicNow() + config_.tls_reload_interval;
  } else {
    TlsStaging::RemoveLeftover(config_.data_dir);  // no stale copy of a key
  }
  if (!config_.metrics.listen.empty()) {  // the aggregator serves it (metrics_listener.h)
    ASSIGN_OR_RETURN(MetricsListener metrics, MetricsListener::Listen(config_.metrics.listen));
    metrics_listener_.emplace(std::move(metrics));
  }
  return absl::OkStatus();
}

HandlerListen Supervisor::HandlerListenOf() const {
  HandlerListen l;
  for (const PortReservation& p : ports_) l.tcp_addresses.push_back(p.address());
  for (const UnixListener& u : unix_sockets_) {
    l.unix_fds.push_back(u.fd());
    l.unix_paths.push_back(u.path());
  }
  if (tls_) {
    l.tls_key_path = tls_->key_path();
    l.tls_cert_path = tls_->cert_path();
    l.tls_ca_path = tls_->ca_path();
    l.tls_reload_interval = config_.tls_reload_interval;
  }
  return l;
}

}  // namespace countersd
