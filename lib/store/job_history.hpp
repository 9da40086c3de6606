#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/job_events.hpp"
#include "core/job_state.hpp"
#include "support/result.hpp"

namespace vapor::store {

/// One point; a NaN loss is stored as NULL and read back as NaN.
struct StoredPoint {
  core::JobId job_id = 0;
  std::uint64_t step = 0;
  std::uint64_t epoch = 0;
  double loss = 0.0;
  double accuracy = 0.0;
  core::WallTime ts;
};

struct StoredTransition {
  core::JobId job_id = 0;
  core::JobState from = core::JobState::queued;
  core::JobState to = core::JobState::queued;
  std::string reason;
  core::WallTime ts;
};

/// A job's recorded history as readers see it (the HTTP API and the live feed's replay): what
/// is committed plus what is still buffered for the next commit. The store implements it; readers
/// depend on this and nothing else of the store. Called on the event-loop thread.
class JobHistory {
 public:
  JobHistory() = default;
  JobHistory(const JobHistory&) = delete;
  JobHistory& operator=(const JobHistory&) = delete;
  virtual ~JobHistory() = default;

  /// Up to `limit` points of a job with step > `after_step`, ascending by step, no duplicates.
  virtual Result<std::vector<StoredPoint>> load_points(core::JobId job_id,
                                                       std::uint64_t after_step,
                                                       std::size_t limit) = 0;
  /// The points with `after_step` < step <= `up_to_step`, reduced to at most `max_points` (>= 2),
  /// keeping each bucket's lowest and highest loss.
  virtual Result<std::vector<StoredPoint>> load_points_downsampled(core::JobId job_id,
                                                                   std::uint64_t after_step,
                                                                   std::uint64_t up_to_step,
                                                                   std::size_t max_points) = 0;
  /// A job's state transitions in the order they happened.
  virtual Result<std::vector<StoredTransition>> load_transitions(core::JobId job_id) = 0;
};

}  // namespace vapor::store
