#pragma once

#include <optional>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "runtime/scheduler.hpp"

namespace vapor::runtime {

/// Drives a Scheduler from one Asio steady timer set to the scheduler's next deadline: a timer
/// heap inside the scheduler instead of one Asio timer per job. Call `rearm()` after anything
/// that may move the deadline (adding, starting, stopping, pausing). Event-loop thread only.
class SchedulerDriver {
 public:
  SchedulerDriver(const boost::asio::any_io_executor& executor, Scheduler& scheduler);

  void rearm();
  /// Stops driving; pending work stays in the scheduler.
  void cancel();

 private:
  void on_timer(const boost::system::error_code& ec);

  boost::asio::steady_timer timer_;
  Scheduler& scheduler_;
  std::optional<SteadyTime> armed_for_;
  bool cancelled_ = false;
};

}  // namespace vapor::runtime
