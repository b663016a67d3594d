// Telling systemd what the daemon does (Type=notify, WatchdogSec=), with
// libsystemd's sd_notify. The supervisor's alone: it is the unit's main
// process (NotifyAccess=main); the children never notify.
//
// How it works:
//  - systemd passes NOTIFY_SOCKET (an AF_UNIX datagram socket) and, with
//    WatchdogSec=, WATCHDOG_USEC (and WATCHDOG_PID, the main pid). Each
//    call below sends one datagram of "KEY=value" lines with sd_notify.
//    Without NOTIFY_SOCKET sd_notify returns 0 and sends nothing: every call
//    is then a no-op (the daemon runs the same under a terminal, a
//    container or Type=exec).
//  - Start-up: Status() lines say what the supervisor does ("opening the
//    table", "starting N handlers"); Ready() sends READY=1 once, when every
//    handler has marked itself ready in its process slot (the supervisor's
//    "ready" log line, supervisor_readiness.cc), so `systemctl start`
//    returns and units ordered After= start only once the port serves.
//  - SIGHUP: Reloading() (RELOADING=1 with MONOTONIC_USEC) before the
//    reload and Reloaded() (READY=1) after it, only once ready.
//  - SIGTERM/SIGINT: Stopping() sends STOPPING=1 with the status.
//  - Watchdog: sd_watchdog_enabled reads WATCHDOG_USEC once, at
//    construction. KeepAlive() sends WATCHDOG=1 when half that interval has
//    passed since the last one (sd_watchdog_enabled(3)'s advice) and
//    returns how long until the next is due; the supervisor calls it before
//    every wait and waits no longer than that, so a supervisor whose loop
//    turns keeps systemd's watchdog fed, and one that hangs is killed by
//    systemd (WatchdogSignal=, then restarted by Restart=).
//  - A send that fails is logged once (a warning naming the error); the
//    daemon runs on.
// Thread-safety: one thread (the supervisor's) uses it.
#ifndef COUNTERSD_SERVER_SYSTEMD_NOTIFY_H_
#define COUNTERSD_SERVER_SYSTEMD_NOTIFY_H_

#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace countersd {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET and the watchdog settings from the environment. A
  // malformed WATCHDOG_USEC means no watchdog; the first Status() or
  // KeepAlive() logs it (a warning), and the settings in force (info), so
  // that the lines follow the daemon's log format, set after construction.
  SystemdNotifier();

  // Whether NOTIFY_SOCKET is set (anything is sent at all).
  bool enabled() const { return enabled_; }
  // The watchdog's timeout (WATCHDOG_USEC); zero without one.
  absl::Duration watchdog_timeout() const { return watchdog_timeout_; }

  void Status(std::string_view status);
  // READY=1 with a status; only the first call sends READY=1.
  void Ready(std::string_view status);
  void Reloading();
  void Reloaded();
  void Stopping(std::string_view status);
  // WATCHDOG=1 if half the watchdog timeout has passed since the last one.
  // Returns the time until the next is due, InfiniteDuration() without a
  // watchdog.
  absl::Duration KeepAlive();

 private:
  void Send(const std::string& message);
  void LogSettingsOnce();

  bool enabled_ = false;
  bool ready_ = false;
  bool reloading_ = false;
  bool failure_logged_ = false;
  bool settings_logged_ = false;
  std::string watchdog_error_;  // why WATCHDOG_USEC was refused
  absl::Duration watchdog_timeout_ = absl::ZeroDuration();
  absl::Duration next_keepalive_ = absl::ZeroDuration();  // CLOCK_MONOTONIC time
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_SYSTEMD_NOTIFY_H_
