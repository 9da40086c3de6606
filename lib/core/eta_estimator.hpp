#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace vapor::core {

/// Estimates time to completion from a smoothed step rate: an exponentially weighted moving
/// average of the time between steps, so a slowdown shows within a few steps and one slow step
/// does not swing the estimate. Unknown until `min_intervals` intervals have been seen.
/// Plain value type; the caller supplies monotonic time, so it never reads a clock.
class EtaEstimator {
 public:
  static constexpr int min_intervals = 3;

  explicit EtaEstimator(double smoothing = 0.2) : smoothing_(smoothing) {}

  /// A step happened at monotonic time `at`.
  void observe(std::chrono::nanoseconds at);

  /// Forget the previous timing (after a pause, a restart or a resume).
  void reset();

  /// Smoothed seconds per step, once known.
  [[nodiscard]] std::optional<double> seconds_per_step() const;

  /// Seconds until `remaining_steps` more steps are done, once known.
  [[nodiscard]] std::optional<double> eta_seconds(std::uint64_t remaining_steps) const;

 private:
  double smoothing_;
  std::optional<std::chrono::nanoseconds> last_;
  double average_seconds_ = 0.0;
  int intervals_ = 0;
};

}  // namespace vapor::core
