#include "core/simulator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/counter_rng.hpp"

namespace vapor::core {
namespace {

// Independent random streams per step.
constexpr std::uint64_t loss_stream = 1;
constexpr std::uint64_t accuracy_stream = 2;
constexpr std::uint64_t crash_stream = 3;

constexpr double reference_learning_rate = 1e-3;

double decay_progress(const JobSpec& spec, std::uint64_t step) {
  const double total = static_cast<double>(std::max<std::uint64_t>(spec.total_steps(), 1));
  const double fraction = static_cast<double>(step) / total;
  const double rate =
      spec.simulate.decay * std::sqrt(std::max(spec.learning_rate, 0.0) / reference_learning_rate);
  return std::exp(-rate * fraction);
}

double clamped_normal(const CounterRng& rng, std::uint64_t step, std::uint64_t stream) {
  return std::clamp(rng.normal(step, stream), -max_noise_sigmas, max_noise_sigmas);
}

}  // namespace

std::uint64_t epoch_of_step(const JobSpec& spec, std::uint64_t step) {
  if (step == 0 || spec.steps_per_epoch == 0) return 0;
  return (step - 1) / spec.steps_per_epoch + 1;
}

double expected_loss(const JobSpec& spec, std::uint64_t step) {
  const auto& sim = spec.simulate;
  return sim.final_loss + (sim.initial_loss - sim.final_loss) * decay_progress(spec, step);
}

SimulatedStep simulate_step(const JobSpec& spec, std::uint64_t step) {
  SimulatedStep out;
  out.step = step;
  out.epoch = epoch_of_step(spec, step);

  const auto& faults = spec.faults;
  if (faults.stall_at_step && step >= *faults.stall_at_step) {
    out.kind = StepKind::stall;
    return out;
  }
  const CounterRng rng(spec.seed);
  if ((faults.fail_at_step && step == *faults.fail_at_step) ||
      (faults.fail_probability > 0.0 && rng.uniform(step, crash_stream) < faults.fail_probability)) {
    out.kind = StepKind::crash;
    return out;
  }

  const auto& sim = spec.simulate;
  out.loss = expected_loss(spec, step) * std::exp(sim.noise * clamped_normal(rng, step, loss_stream));
  if (faults.nan_at_step && step == *faults.nan_at_step) {
    out.loss = std::numeric_limits<double>::quiet_NaN();
  }
  const double accuracy =
      sim.final_accuracy - (sim.final_accuracy - sim.initial_accuracy) * decay_progress(spec, step);
  out.accuracy =
      std::clamp(accuracy + 0.2 * sim.noise * clamped_normal(rng, step, accuracy_stream), 0.0, 1.0);
  return out;
}

std::chrono::milliseconds step_delay(const JobSpec& spec, std::uint64_t step) {
  const auto& slowdown = spec.faults.slowdown;
  if (slowdown && step >= slowdown->at_step) {
    const double scaled = static_cast<double>(spec.step_interval.count()) * slowdown->factor;
    // At least 1 ms: a zero delay would take every remaining step in one go.
    return std::chrono::milliseconds(std::max<std::int64_t>(1, std::llround(scaled)));
  }
  return spec.step_interval;
}

}  // namespace vapor::core
