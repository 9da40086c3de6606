#include "core/eta_estimator.hpp"

namespace vapor::core {

void EtaEstimator::observe(std::chrono::nanoseconds at) {
  if (last_) {
    const double interval = std::chrono::duration<double>(at - *last_).count();
    average_seconds_ =
        intervals_ == 0 ? interval : smoothing_ * interval + (1.0 - smoothing_) * average_seconds_;
    ++intervals_;
  }
  last_ = at;
}

void EtaEstimator::reset() {
  last_.reset();
  average_seconds_ = 0.0;
  intervals_ = 0;
}

std::optional<double> EtaEstimator::seconds_per_step() const {
  if (intervals_ < min_intervals) return std::nullopt;
  return average_seconds_;
}

std::optional<double> EtaEstimator::eta_seconds(std::uint64_t remaining_steps) const {
  const auto per_step = seconds_per_step();
  if (!per_step) return std::nullopt;
  return *per_step * static_cast<double>(remaining_steps);
}

}  // namespace vapor::core
