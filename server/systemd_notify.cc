// systemd notifications (systemd_notify.h has how it works).
#include "server/systemd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "shared/log.h"

namespace countersd {
namespace {

absl::Duration MonotonicNow() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::DurationFromTimespec(ts);
}

// A status is one line of the protocol: no newline may end it early.
std::string OneLine(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

}  // namespace

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  const int r = sd_watchdog_enabled(/*unset_environment=*/0, &usec);
  if (r < 0) {
    watchdog_error_ = strerror(-r);
  } else if (r > 0 && enabled_) {
    watchdog_timeout_ = absl::Microseconds(usec);
  }
}

void SystemdNotifier::LogSettingsOnce() {
  if (settings_logged_) return;
  settings_logged_ = true;
  if (!watchdog_error_.empty()) {
    const char* value = std::getenv("WATCHDOG_USEC");
    Log(LogLevel::kWarning, "ignoring the systemd watchdog setting",
        {{"WATCHDOG_USEC", value != nullptr ? value : ""}, {"error", watchdog_error_}});
  }
  if (enabled_) {
    Log(LogLevel::kInfo, "notifying systemd",
        {{"NOTIFY_SOCKET", std::getenv("NOTIFY_SOCKET")},
         {"watchdog_timeout", absl::FormatDuration(watchdog_timeout_)}});
  }
}

void SystemdNotifier::Send(const std::string& message) {
  if (!enabled_) return;
  const int r = sd_notify(/*unset_environment=*/0, message.c_str());
  if (r < 0 && !failure_logged_) {
    failure_logged_ = true;
    const char* socket = std::getenv("NOTIFY_SOCKET");
    Log(LogLevel::kWarning, "cannot notify systemd (logged once)",
        {{"NOTIFY_SOCKET", socket != nullptr ? socket : ""}, {"error", strerror(-r)}});
  }
}

void SystemdNotifier::Status(std::string_view status) {
  LogSettingsOnce();
  Send(absl::StrCat("STATUS=", OneLine(status)));
}

void SystemdNotifier::Ready(std::string_view status) {
  if (ready_) return Status(status);
  ready_ = true;
  Send(absl::StrCat("READY=1\nSTATUS=", OneLine(status)));
}

void SystemdNotifier::Reloading() {
  if (!ready_) return;
  reloading_ = true;
  Send(absl::StrCat("RELOADING=1\nMONOTONIC_USEC=", absl::ToInt64Microseconds(MonotonicNow()),
                    "\nSTATUS=reloading --auth-file"));
}

void SystemdNotifier::Reloaded() {
  if (!reloading_) return;
  reloading_ = false;
  Send("READY=1\nSTATUS=serving (reloaded --auth-file)");
}

void SystemdNotifier::Stopping(std::string_view status) {
  Send(absl::StrCat("STOPPING=1\nSTATUS=", OneLine(status)));
}

absl::Duration SystemdNotifier::KeepAlive() {
  LogSettingsOnce();
  if (watchdog_timeout_ == absl::ZeroDuration()) return absl::InfiniteDuration();
  const absl::Duration now = MonotonicNow();
  if (now >= next_keepalive_) {
    Send("WATCHDOG=1");
    next_keepalive_ = now + watchdog_timeout_ / 2;
  }
  return next_keepalive_ - now;
}

}  // namespace countersd
