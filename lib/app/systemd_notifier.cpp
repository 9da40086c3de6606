#include "app/systemd_notifier.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "support/log.hpp"

namespace vapor::app {
namespace {

/// A `STATUS=` value on one line: a newline would start a new (bogus) assignment.
std::string status_line(std::string_view status) {
  std::string line = "STATUS=";
  for (const char c : status) line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  return line;
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC= against.
std::uint64_t monotonic_microseconds() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
         static_cast<std::uint64_t>(now.tv_nsec) / 1'000U;
}

}  // namespace

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  // Positive only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, names this process.
  std::uint64_t watchdog_usec = 0;
  if (::sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
    // Never a busy loop, whatever WATCHDOG_USEC says.
    watchdog_period_ = std::chrono::microseconds(std::max<std::uint64_t>(watchdog_usec / 2, 1000));
  }
}

void SystemdNotifier::ready(std::string_view status) {
  send("READY=1\n" + status_line(status));
}

void SystemdNotifier::reloading(std::string_view status) {
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_microseconds()) + "\n" +
       status_line(status));
}

void SystemdNotifier::stopping(std::string_view status) {
  send("STOPPING=1\n" + status_line(status));
}

void SystemdNotifier::status(std::string_view status) { send(status_line(status)); }

void SystemdNotifier::watchdog() { send("WATCHDOG=1"); }

void SystemdNotifier::send(const std::string& message) {
  if (!enabled_) return;
  const int sent = ::sd_notify(0, message.c_str());
  if (sent < 0 && !failure_logged_) {
    // systemd went away or the socket is unreachable: say so once, keep running.
    failure_logged_ = true;
    log::warning(std::string("systemd notification failed (NOTIFY_SOCKET): ") +
                 std::strerror(-sent));
  }
}

}  // namespace vapor::app
