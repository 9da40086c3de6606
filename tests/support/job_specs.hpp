#pragma once

// Job specs and step events for tests in every folder: specs built as the queue file would
// build them, steps as the scheduler would record them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/job_events.hpp"
#include "core/job_spec.hpp"

namespace vapor::testing {

/// A simulated job of `steps` steps in one epoch, one every `interval`, seeded by its name (so
/// its curve is the same in every run).
inline core::JobSpec simulated_job(std::string name, std::uint64_t steps,
                                   std::chrono::milliseconds interval,
                                   core::StartMode start = core::StartMode::automatic) {
  core::JobSpec spec;
  spec.name = std::move(name);
  spec.epochs = 1;
  spec.steps_per_epoch = steps;
  spec.step_interval = interval;
  spec.seed = core::seed_from_name(spec.name);
  spec.start = start;
  return spec;
}

/// Step `step` of job `job` in epoch 1, loss 1/step unless given, stamped `step` ms after a
/// fixed instant (so steps are ordered in time as in numbers).
inline core::StepRecorded step_recorded(core::JobId job, std::uint64_t step,
                                        std::optional<double> loss = std::nullopt) {
  core::StepRecorded event;
  event.job_id = job;
  event.step = step;
  event.epoch = 1;
  event.loss = loss.value_or(1.0 / static_cast<double>(step));
  event.ts = core::WallTime(std::chrono::milliseconds(1'700'000'000'000) +
                            std::chrono::milliseconds(static_cast<std::int64_t>(step)));
  return event;
}

}  // namespace vapor::testing
