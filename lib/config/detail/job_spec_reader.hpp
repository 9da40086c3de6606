#pragma once

#include <cstdint>
#include <optional>

#include "config/detail/node_validator.hpp"
#include "config/queue_file.hpp"
#include "core/job_spec.hpp"

/// Internal to the config module.
namespace vapor::config::detail {

/// The most steps one job may run (epochs * steps_per_epoch).
inline constexpr std::uint64_t max_total_steps = 10'000'000;

/// A job spec as read from a tree. `spec` is meaningful only when the read added no error;
/// `name` is the field of a valid name (for duplicate checks across a queue file).
struct JobSpecRead {
  core::JobSpec spec;
  std::optional<Field> name;
};

/// Reads and validates one job spec (a map of job keys) at `field`, reporting every problem to
/// `validator`. Defaults come from core::JobSpec, then `defaults`, then the name (the seed).
[[nodiscard]] JobSpecRead read_job_spec(NodeValidator& validator, const Field& field,
                                        const SpecDefaults& defaults);

}  // namespace vapor::config::detail
