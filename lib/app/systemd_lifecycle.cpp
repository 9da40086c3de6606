#include "app/systemd_lifecycle.hpp"

#include <chrono>
#include <utility>

namespace vapor::app {

std::string status_line(const DaemonStatus& status) {
  std::string text = std::to_string(status.running) + " running, " +
                     std::to_string(status.queued) + " queued, " + std::to_string(status.done) +
                     " done (" + std::to_string(status.failed) + " failed)";
  if (!status.queue_loaded) {
    text += "; queue " + status.queue_path + " not loaded, see the log";
  } else if (!status.last_reload_successful) {
    text += "; the last queue reload failed, see the log";
  }
  if (status.jobs_paused) text += "; jobs paused: the store is behind";
  if (status.store_failing) text += "; store commits failing";
  return text;
}

SystemdLifecycle::SystemdLifecycle(const boost::asio::any_io_executor& executor,
                                   std::function<std::string()> status_text)
    : status_text_(std::move(status_text)),
      watchdog_timer_(executor, [this] { notifier_.watchdog(); }),
      status_timer_(executor, [this] { refresh_status(); }) {}

void SystemdLifecycle::started() {
  if (!notifier_.enabled()) return;
  // The port is bound, the store open and the queue loaded (or its errors logged: the daemon
  // serves anyway, /readyz says 503 and STATUS= says why), so start-up is over.
  last_status_ = status_text_();
  notifier_.ready(last_status_);
  if (const auto period = notifier_.watchdog_period()) watchdog_timer_.start(*period);
  status_timer_.start(std::chrono::seconds(2));
}

void SystemdLifecycle::reloading(std::string_view what) { notifier_.reloading(what); }

void SystemdLifecycle::reloaded() {
  // systemctl reload waits between RELOADING=1 and READY=1; a failed reload is still over.
  last_status_ = status_text_();
  notifier_.ready(last_status_);
}

void SystemdLifecycle::stopping(std::string_view what) {
  watchdog_timer_.cancel();
  status_timer_.cancel();
  notifier_.stopping(what);
}

void SystemdLifecycle::refresh_status() {
  if (auto text = status_text_(); text != last_status_) {
    notifier_.status(text);
    last_status_ = std::move(text);
  }
}

}  // namespace vapor::app
