#pragma once

#include <chrono>

#include "core/job_events.hpp"

namespace vapor::runtime {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Where the scheduler reads time: monotonic time for deadlines, wall time for timestamps.
/// Injected so that tests advance a fake clock instead of sleeping.
class Clock {
 public:
  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;

  [[nodiscard]] virtual SteadyTime now() const = 0;
  [[nodiscard]] virtual core::WallTime wall_now() const = 0;
};

/// The real clocks. Stateless; any thread.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  [[nodiscard]] core::WallTime wall_now() const override {
    return std::chrono::system_clock::now();
  }
};

/// A clock that moves only when told; wall time moves with it. For tests.
class ManualClock final : public Clock {
 public:
  ManualClock()
      : wall_start_(std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))) {}

  [[nodiscard]] SteadyTime now() const override { return now_; }
  [[nodiscard]] core::WallTime wall_now() const override {
    return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                             now_.time_since_epoch());
  }
  void advance(std::chrono::nanoseconds by) { now_ += by; }

 private:
  SteadyTime now_{};
  core::WallTime wall_start_;
};

}  // namespace vapor::runtime
