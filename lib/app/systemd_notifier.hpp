#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace vapor::app {

/// Speaks systemd's notify protocol for a `Type=notify` unit: readiness, reload and shutdown
/// notices, `STATUS=` lines for `systemctl status`, and watchdog pings. Outside systemd
/// (NOTIFY_SOCKET unset) every call does nothing. Event-loop thread only: the order of the calls
/// is the order systemd sees.
class SystemdNotifier {
 public:
  /// Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment once.
  SystemdNotifier();

  /// Whether a service manager is listening (NOTIFY_SOCKET is set).
  [[nodiscard]] bool enabled() const { return enabled_; }
  /// How often to send `WATCHDOG=1`: half of WATCHDOG_USEC, if systemd asked this process for
  /// pings (WatchdogSec= in the unit), else empty.
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdog_period() const {
    return watchdog_period_;
  }

  /// Start-up (or a reload) is finished: `READY=1`.
  void ready(std::string_view status);
  /// A reload begins: `RELOADING=1` with the `MONOTONIC_USEC=` that systemd 253+ requires.
  void reloading(std::string_view status);
  /// Shutdown begins: `STOPPING=1`.
  void stopping(std::string_view status);
  /// A new `STATUS=` line only.
  void status(std::string_view status);
  /// `WATCHDOG=1`: the event loop is alive.
  void watchdog();

 private:
  void send(const std::string& message);

  bool enabled_ = false;
  std::optional<std::chrono::microseconds> watchdog_period_;
  bool failure_logged_ = false;
};

}  // namespace vapor::app
