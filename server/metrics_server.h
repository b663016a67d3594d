// The aggregator's HTTP server for GET /metrics: libmicrohttpd (Debian's
// libmicrohttpd-dev) on the listening socket the supervisor bound
// (metrics_listener.h), run by libmicrohttpd's own thread (epoll), so the
// aggregator's snapshot loop never waits for a scraper and a scraper never
// waits for a snapshot. GET or HEAD /metrics answers 200 with the page
// (text/plain; version=0.0.4); any other path 404, any other method 405.
// At most kMaxConnections at once, each closed after kConnectionTimeout
// idle. gRPC-free.
#ifndef COUNTERSD_SERVER_METRICS_SERVER_H_
#define COUNTERSD_SERVER_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace countersd {

class MetricsServer {
 public:
  static constexpr unsigned kMaxConnections = 16;
  static constexpr unsigned kConnectionTimeoutSeconds = 10;

  // Serves `listen_fd` (bound and listening; the server does not close it:
  // its owner does) with `render` answering each GET /metrics, called on
  // the server's thread, one call at a time. INTERNAL if libmicrohttpd does
  // not start.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(int listen_fd,
                                                              std::function<std::string()> render);
  ~MetricsServer();  // stops the thread

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

 private:
  explicit MetricsServer(std::function<std::string()> render) : render_(std::move(render)) {}
  std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
  friend struct MetricsServerCallbacks;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_METRICS_SERVER_H_
