#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "app/systemd_notifier.hpp"
#include "support/repeating_timer.hpp"

namespace vapor::app {

/// What `systemctl status` shows of vapord: the job counts and any trouble an operator must see.
struct DaemonStatus {
  std::size_t queued = 0;
  std::size_t running = 0;
  std::size_t done = 0;    ///< complete, failed or stopped
  std::size_t failed = 0;  ///< of `done`
  bool queue_loaded = false;
  bool last_reload_successful = false;
  std::string queue_path;
  bool jobs_paused = false;    ///< the store is behind
  bool store_failing = false;  ///< commits fail
};

/// One line for systemd's STATUS=: "3 running, 2 queued, 10 done (1 failed)" and any trouble.
[[nodiscard]] std::string status_line(const DaemonStatus& status);

/// vapord's side of a `Type=notify` unit over its lifetime: READY=1 once start-up is over,
/// RELOADING=1/READY=1 around a reload, STOPPING=1, WATCHDOG=1 pings from the event loop (a stuck
/// loop stops them) and a STATUS= line kept current (sent when it changes). Outside systemd every
/// call does nothing. Event-loop thread only.
class SystemdLifecycle {
 public:
  SystemdLifecycle(const boost::asio::any_io_executor& executor,
                   std::function<std::string()> status_text);

  /// Start-up is over: READY=1 with the status, then the watchdog and status timers.
  void started();
  /// A reload begins (`what` is the STATUS= text meanwhile).
  void reloading(std::string_view what);
  /// The reload is over, failed or not: READY=1 with the new status.
  void reloaded();
  /// Shutdown begins: timers stop (systemd now allows TimeoutStopSec to drain), STOPPING=1.
  void stopping(std::string_view what);

 private:
  void refresh_status();

  SystemdNotifier notifier_;
  std::function<std::string()> status_text_;
  RepeatingTimer watchdog_timer_;
  RepeatingTimer status_timer_;
  std::string last_status_;  ///< the STATUS= systemd has
};

}  // namespace vapor::app
