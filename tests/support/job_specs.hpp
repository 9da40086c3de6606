#pragma once

// Job specs for tests in every folder, built as the queue file would build them.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

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

}  // namespace vapor::testing
