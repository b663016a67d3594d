// GET /metrics over libmicrohttpd (metrics_server.h).
#include "server/metrics_server.h"

#include <microhttpd.h>

#include <cstring>

namespace countersd {

struct MetricsServerCallbacks {
  static MHD_Result Answer(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char* /*version*/, const char* /*upload_data*/,
                           size_t* upload_data_size, void** /*con_cls*/) {
    auto* server = static_cast<MetricsServer*>(cls);
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    unsigned status = MHD_HTTP_OK;
    std::string body;
    const char* type = "text/plain; version=0.0.4; charset=utf-8";
    if (!get && !head) {
      status = MHD_HTTP_METHOD_NOT_ALLOWED;
      body = "only GET /metrics\n";
      type = "text/plain; charset=utf-8";
    } else if (std::strcmp(url, "/metrics") != 0) {
      status = MHD_HTTP_NOT_FOUND;
      body = "not found: the metrics are at /metrics\n";
      type = "text/plain; charset=utf-8";
    } else {
      body = server->render_();
    }
    *upload_data_size = 0;  // a request body is ignored
    MHD_Response* response =
        MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    MHD_Result r = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return r;
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    int listen_fd, std::function<std::string()> render) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(std::move(render)));
  server->daemon_ = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD, 0, nullptr, nullptr, &MetricsServerCallbacks::Answer,
      server.get(), MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(listen_fd),
      MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, MHD_OPTION_CONNECTION_TIMEOUT,
      kConnectionTimeoutSeconds, MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::InternalError("libmicrohttpd did not start on the --metrics-listen socket");
  }
  return server;
}

MetricsServer::~MetricsServer() {
  if (daemon_ == nullptr) return;
  // Quiesce first: MHD_stop_daemon would close the listening socket, which
  // is the supervisor's (a respawned aggregator serves it again).
  MHD_quiesce_daemon(daemon_);
  MHD_stop_daemon(daemon_);
}

}  // namespace countersd
