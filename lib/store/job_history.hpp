#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
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
  core::Scalars scalars;  ///< a real job's named scalars at this step
};

struct StoredTransition {
  core::JobId job_id = 0;
  core::JobState from = core::JobState::queued;
  core::JobState to = core::JobState::queued;
  std::string reason;
  core::WallTime ts;
  std::optional<std::uint64_t> step;  ///< the job's last step when it changed (none: stored
                                      ///< before vapord recorded it)
};

/// Where a read's answer goes: called once, on the event-loop thread, never from within the call
/// that asked.
template <class T>
using Reply = std::function<void(Result<T>)>;

/// A job's recorded history as readers see it (the HTTP API and the live feed's replay): what
/// is committed plus every row recorded before the read was asked for. Asynchronous: the reads
/// run on the store thread (StoreThread implements it), so a long one never holds the event
/// loop. Readers depend on this and nothing else of the store. Called on the event-loop thread.
class JobHistory {
 public:
  JobHistory() = default;
  JobHistory(const JobHistory&) = delete;
  JobHistory& operator=(const JobHistory&) = delete;
  virtual ~JobHistory() = default;

  /// Up to `limit` points of a job with step > `after_step`, ascending by step, no duplicates.
  virtual void load_points(core::JobId job_id, std::uint64_t after_step, std::size_t limit,
                           Reply<std::vector<StoredPoint>> done) = 0;
  /// The points with `after_step` < step <= `up_to_step`, reduced to at most `max_points` (>= 2),
  /// keeping each bucket's lowest and highest loss.
  virtual void load_points_downsampled(core::JobId job_id, std::uint64_t after_step,
                                       std::uint64_t up_to_step, std::size_t max_points,
                                       Reply<std::vector<StoredPoint>> done) = 0;
  /// A job's state transitions in the order they happened.
  virtual void load_transitions(core::JobId job_id,
                                Reply<std::vector<StoredTransition>> done) = 0;
};

}  // namespace vapor::store
