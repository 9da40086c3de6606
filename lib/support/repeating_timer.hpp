#pragma once

#include <chrono>
#include <functional>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace vapor {

/// Calls `tick` every `period` on an executor until `cancel()`: the flush, expiry, watchdog and
/// status timers of the daemon. The first call comes one period after `start()`. The owner
/// outlives the io_context's pending handlers (it cancels, then the context drains).
/// Event-loop thread only.
class RepeatingTimer {
 public:
  RepeatingTimer(const boost::asio::any_io_executor& executor, std::function<void()> tick)
      : timer_(executor), tick_(std::move(tick)) {}
  RepeatingTimer(const RepeatingTimer&) = delete;
  RepeatingTimer& operator=(const RepeatingTimer&) = delete;

  void start(std::chrono::steady_clock::duration period) {
    period_ = period;
    cancelled_ = false;
    do_wait();
  }
  void cancel() {
    cancelled_ = true;
    timer_.cancel();
  }
  [[nodiscard]] bool running() const { return !cancelled_; }

 private:
  void do_wait() {
    timer_.expires_after(period_);
    timer_.async_wait([this](const boost::system::error_code& ec) { on_wait(ec); });
  }
  void on_wait(const boost::system::error_code& ec) {
    if (ec || cancelled_) return;
    tick_();
    if (!cancelled_) do_wait();  // the tick may have cancelled
  }

  boost::asio::steady_timer timer_;
  std::function<void()> tick_;
  std::chrono::steady_clock::duration period_{};
  bool cancelled_ = true;
};

}  // namespace vapor
