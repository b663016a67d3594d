// The transport's flags: their definitions, parsing and validation
// (transport_config.h says what each rule is for). --help lists them from
// config.cc's one table of flag names.
#include "server/transport_config.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "shared/abseil_string_view.h"

ABSL_FLAG(std::string, listen, countersd::kDefaultListen,
          "Addresses to serve gRPC on, comma-separated: host:port, [ipv6]:port or "
          "unix:/absolute/path (e.g. 127.0.0.1:50051,unix:/run/countersd/countersd.sock). Port "
          "0 picks a free port (the \"ready\" log line names it). Every handler process "
          "serves every address: TCP ports are shared with SO_REUSEPORT, and a unix socket is "
          "created by the supervisor (after it holds the data directory's lock; a stale socket "
          "file is replaced, any other file at the path is refused) and accepted from by every "
          "handler. A second countersd on the same address fails at start. Addresses beyond "
          "loopback need TLS or --auth-file (protected mode; see "
          "--allow-unauthenticated-network-access).");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain (leaf first) of the TCP listeners; with --tls-key-file turns "
          "TLS on for every TCP address (unix sockets stay plaintext: they are local and their "
          "file permissions decide who connects). Checked at start (a bad file exits 2) and "
          "re-read every --tls-reload-interval: a rotated pair is served to new connections "
          "without dropping any; a bad one is logged and the last good pair kept.");
ABSL_FLAG(std::string, tls_key_file, "",
          "PEM private key of --tls-cert-file's leaf certificate.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "mTLS: PEM CA certificates; TCP clients must present a certificate that verifies "
          "against them, or the handshake fails. Needs --tls-cert-file. Reloaded like the "
          "certificate.");
ABSL_FLAG(absl::Duration, tls_reload_interval, countersd::kDefaultTlsReloadInterval,
          "How often the TLS files are checked for a change (cert-manager rotates them in "
          "place); a new certificate reaches new connections within twice this. 1s to 1h.");
ABSL_FLAG(std::string, unix_socket_mode, "0660",
          "Permission bits (octal) of each unix: socket file; who may connect is who may write "
          "it.");
ABSL_FLAG(std::string, unix_socket_group, "",
          "Group (name or gid) of each unix: socket file; default the daemon's group.");
ABSL_FLAG(bool, allow_unauthenticated_network_access, false,
          "Protected mode's opt-out: serve a TCP address beyond loopback with neither TLS nor "
          "--auth-file, so that anyone who can reach it may read, change and delete every "
          "counter. Logged as a warning at every start.");

namespace countersd {
namespace {

constexpr absl::Duration kMinTlsReloadInterval = absl::Seconds(1);
constexpr absl::Duration kMaxTlsReloadInterval = absl::Hours(1);

// The host part of "host:port" or "[v6]:port" ("" if there is none).
std::string HostOf(const std::string& host_port) {
  if (!host_port.empty() && host_port[0] == '[') {
    size_t close = host_port.find(']');
    return close == std::string::npos ? std::string() : host_port.substr(1, close - 1);
  }
  size_t colon = host_port.rfind(':');
  return colon == std::string::npos ? host_port : host_port.substr(0, colon);
}

bool IsLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    return (a >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a)) return a.s6_addr[12] == 127;
  }
  return false;
}

// The TCP entries of --listen that reach beyond loopback.
std::vector<std::string> NetworkAddresses(const Config& c) {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<ListenAddress>> list = ParseListenList(c.listen);
  if (!list.ok()) return out;
  for (const ListenAddress& a : *list) {
    if (a.kind == ListenAddress::Kind::kTcp && !IsLoopbackOnly(a.address)) {
      out.push_back(a.address);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<ListenAddress>> ParseListenList(std::string_view listen) {
  std::vector<ListenAddress> out;
  std::set<std::string> seen;
  for (absl::string_view part : absl::StrSplit(Sv(listen), ',')) {
    std::string entry(part);
    if (entry.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen=", Sv(listen), ": an empty address (a stray comma?)"));
    }
    if (!seen.insert(entry).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen=", Sv(listen), ": ", entry, " is given twice"));
    }
    if (entry.rfind(kUnixPrefix, 0) == 0) {
      std::string path = entry.substr(kUnixPrefix.size());
      if (path.empty() || path[0] != '/') {
        return absl::InvalidArgumentError(absl::StrCat(
            "--listen: ", entry, ": a unix socket path must be absolute (unix:/run/x.sock)"));
      }
      if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--listen: ", entry, ": the path is longer than a unix socket allows (",
                         sizeof(sockaddr_un{}.sun_path) - 1, " bytes)"));
      }
      out.push_back({ListenAddress::Kind::kUnix, std::move(path)});
    } else {
      out.push_back({ListenAddress::Kind::kTcp, std::move(entry)});
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("--listen must not be empty");
  return out;
}

bool IsLoopbackOnly(const std::string& host_port) {
  std::string host = HostOf(host_port);
  if (host.empty()) return false;
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false;
  bool loopback = res != nullptr;
  for (addrinfo* r = res; r != nullptr; r = r->ai_next) {
    loopback = loopback && IsLoopback(r->ai_addr);
  }
  freeaddrinfo(res);
  return loopback;
}

absl::Status ReadTransportFlags(Config* c) {
  c->listen = absl::GetFlag(FLAGS_listen);
  c->tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  c->tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  c->tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  c->tls_reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  c->unix_socket_group = absl::GetFlag(FLAGS_unix_socket_group);
  c->allow_unauthenticated_network_access =
      absl::GetFlag(FLAGS_allow_unauthenticated_network_access);
  std::string mode = absl::GetFlag(FLAGS_unix_socket_mode);
  uint32_t bits = 0;
  bool octal = !mode.empty() && mode.size() <= 4;
  for (char ch : mode) {
    octal = octal && ch >= '0' && ch <= '7';
    bits = bits * 8 + static_cast<uint32_t>(ch - '0');
  }
  if (!octal || bits > 0777) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad value '", mode, "' for --unix-socket-mode: must be octal permission bits, e.g. 0660"));
  }
  c->unix_socket_mode = bits;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<gid_t>> LookUpGroup(std::string_view flag, const std::string& group) {
  if (group.empty()) return std::optional<gid_t>();
  uint32_t gid = 0;
  if (absl::SimpleAtoi(group, &gid)) return std::optional<gid_t>(gid);
  struct group* g = getgrnam(group.c_str());
  if (g == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("--", Sv(flag), "=", group, ": no such group on this host"));
  }
  return std::optional<gid_t>(g->gr_gid);
}

absl::Status ValidateTransportConfig(const Config& c) {
  absl::StatusOr<std::vector<ListenAddress>> list = ParseListenList(c.listen);
  if (!list.ok()) return list.status();
  bool any_tcp = false, any_unix = false;
  for (const ListenAddress& a : *list) {
    (a.kind == ListenAddress::Kind::kTcp ? any_tcp : any_unix) = true;
  }
  const bool tls = !c.tls_cert_file.empty() || !c.tls_key_file.empty();
  if (tls && (c.tls_cert_file.empty() || c.tls_key_file.empty())) {
    return absl::InvalidArgumentError(
        "--tls-cert-file and --tls-key-file go together: give both to turn TLS on");
  }
  if (!c.tls_client_ca_file.empty() && !tls) {
    return absl::InvalidArgumentError(
        "--tls-client-ca-file (mTLS) needs TLS: give --tls-cert-file and --tls-key-file too");
  }
  if (tls && !any_tcp) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert-file applies to TCP addresses, and --listen=", c.listen, " has none"));
  }
  if (c.tls_reload_interval < kMinTlsReloadInterval ||
      c.tls_reload_interval > kMaxTlsReloadInterval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-reload-interval=", absl::FormatDuration(c.tls_reload_interval),
        " is out of range: must be ", absl::FormatDuration(kMinTlsReloadInterval), " to ",
        absl::FormatDuration(kMaxTlsReloadInterval)));
  }
  if (any_unix || !c.unix_socket_group.empty()) {
    absl::StatusOr<std::optional<gid_t>> gid = LookUpGroup("unix-socket-group", c.unix_socket_group);
    if (!gid.ok()) return absl::InvalidArgumentError(gid.status().message());
  }
  std::vector<std::string> network = NetworkAddresses(c);
  if (!network.empty() && !tls && c.auth_file.empty() && !c.allow_unauthenticated_network_access) {
    return absl::InvalidArgumentError(absl::StrCat(
        "protected mode: --listen=", absl::StrJoin(network, ","),
        " reaches beyond loopback with neither TLS nor an auth file, so anyone who can reach "
        "it could read, change and delete every counter. Fix it with one of: TLS "
        "(--tls-cert-file and --tls-key-file, and --tls-client-ca-file to require client "
        "certificates); --auth-file; listening on 127.0.0.1 or a unix: socket; or, to accept "
        "the risk (e.g. on a network only trusted peers can reach), "
        "--allow-unauthenticated-network-access"));
  }
  return absl::OkStatus();
}

int GatedListenerCount(const Config& c) {
  absl::StatusOr<std::vector<ListenAddress>> list = ParseListenList(c.listen);
  if (!list.ok()) return 1;
  const bool tls = !c.tls_cert_file.empty();
  int n = 0;
  for (const ListenAddress& a : *list) n += a.kind == ListenAddress::Kind::kUnix || !tls;
  return std::max(n, 1);
}

std::optional<std::string> ProtectedModeWarning(const Config& c) {
  if (!c.allow_unauthenticated_network_access || !c.tls_cert_file.empty() ||
      !c.auth_file.empty()) {
    return std::nullopt;
  }
  std::vector<std::string> network = NetworkAddresses(c);
  if (network.empty()) return std::nullopt;
  return absl::StrCat(
      "protected mode is off (--allow-unauthenticated-network-access): ",
      absl::StrJoin(network, ","),
      " serves anyone who can reach it, without TLS or authentication; every counter can be "
      "read, changed and deleted by them");
}

}  // namespace countersd
