#include "runtime/scheduler_driver.hpp"

#include <boost/asio/error.hpp>

namespace vapor::runtime {

SchedulerDriver::SchedulerDriver(const boost::asio::any_io_executor& executor,
                                 Scheduler& scheduler)
    : timer_(executor), scheduler_(scheduler) {}

void SchedulerDriver::rearm() {
  if (cancelled_) return;
  const auto deadline = scheduler_.next_deadline();
  if (deadline == armed_for_) return;  // already waiting for exactly this
  armed_for_ = deadline;
  if (!deadline) {
    timer_.cancel();
    return;
  }
  // Re-setting the expiry cancels the previous wait; its handler sees operation_aborted.
  timer_.expires_at(*deadline);
  timer_.async_wait([this](const boost::system::error_code& ec) { on_timer(ec); });
}

void SchedulerDriver::cancel() {
  cancelled_ = true;
  armed_for_.reset();
  timer_.cancel();
}

void SchedulerDriver::on_timer(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || cancelled_) return;
  armed_for_.reset();
  scheduler_.advance();
  rearm();
}

}  // namespace vapor::runtime
