#pragma once

#include <chrono>
#include <cstdint>

#include "core/job_spec.hpp"

namespace vapor::core {

/// What happens at one step of a simulated run.
enum class StepKind {
  point,  ///< a step was recorded (its loss may be non-finite)
  crash,  ///< the job crashes here (fail_at_step or fail_probability)
  stall,  ///< the job hangs here and records nothing more
};

/// One step's outcome. `step` is 1-based and global across epochs; `epoch` is 1-based.
struct SimulatedStep {
  StepKind kind = StepKind::point;
  std::uint64_t step = 0;
  std::uint64_t epoch = 0;
  double loss = 0.0;
  double accuracy = 0.0;
};

/// Noise draws are clamped to this many standard deviations, so a point is never wild.
inline constexpr double max_noise_sigmas = 4.0;

/// The simulation: a pure function of (spec, step). No I/O, no clock, no state; a resumed run
/// therefore produces exactly the points an uninterrupted one would have. Any thread.
[[nodiscard]] SimulatedStep simulate_step(const JobSpec& spec, std::uint64_t step);

/// The noise-free loss at `step` (the curve the noisy points scatter around).
[[nodiscard]] double expected_loss(const JobSpec& spec, std::uint64_t step);

/// The 1-based epoch that `step` belongs to.
[[nodiscard]] std::uint64_t epoch_of_step(const JobSpec& spec, std::uint64_t step);

/// How long the job waits before taking `step`, slowdown fault included.
[[nodiscard]] std::chrono::milliseconds step_delay(const JobSpec& spec, std::uint64_t step);

}  // namespace vapor::core
