// When the daemon is ready, and who is told (step 8 of supervisor.cc). Part
// of Supervisor; no gRPC.
//
// How it works: every turn of the supervisor's loop counts the handlers that
// serve: running, with their process slot marked ready (a handler marks it
// once its gRPC server is built and serving, handler_process.cc, and clears
// it when it drains). The first time all of them serve, the supervisor logs
// "ready" with the resolved listen address (tests and operators wait for
// that line) and then tells systemd READY=1 (systemd_notify.h), so that
// READY=1 never comes before the line, nor before every handler serves.
// After that, each change of the count is systemd's STATUS= ("serving ...:
// 1 of 2 handlers ready"), so `systemctl status` shows a handler being
// respawned.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/supervisor.h"
#include "shared/log.h"

namespace countersd {
namespace {

// The ready line's "listen": the first TCP address, else the first unix
// socket (tests and scripts connect to it); "addresses" has them all.
std::string FirstAddress(const HandlerListen& l) {
  if (!l.tcp_addresses.empty()) return l.tcp_addresses.front();
  return l.unix_paths.empty() ? "" : absl::StrCat("unix:", l.unix_paths.front());
}

}  // namespace

int Supervisor::ServingHandlers() const {
  std::vector<ProcessStats> stats = table_->ProcessStatsSnapshot();
  int serving = 0;
  for (const Child& c : children_) {
    if (c.role != ProcessRole::kHandler || c.pid == 0) continue;
    serving += std::any_of(stats.begin(), stats.end(),
                           [&c](const ProcessStats& s) { return s.pid == c.pid && s.ready; });
  }
  return serving;
}

void Supervisor::TrackReadiness() {
  const int serving = ServingHandlers();
  if (serving == last_serving_handlers_) return;
  last_serving_handlers_ = serving;
  const std::string listen = HandlerListenOf().Describe();
  if (!announced_ready_ && serving == config_.handlers) {
    announced_ready_ = true;
    Log(LogLevel::kInfo, "ready",
        {{"listen", FirstAddress(HandlerListenOf())},
         {"addresses", listen},
         {"handlers", config_.handlers},
         {"data_dir", config_.data_dir},
         {"capacity", table_->capacity()},
         {"counters", table_->size()}});
  }
  const std::string status = absl::StrCat(announced_ready_ ? "serving" : "starting", " on ",
                                          listen, ": ", serving, " of ", config_.handlers,
                                          " handlers ready");
  if (announced_ready_) {
    systemd_.Ready(status);  // READY=1 the first time, then STATUS= only
  } else {
    systemd_.Status(status);
  }
}

}  // namespace countersd
