#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/job_state.hpp"

namespace vapor::core {

using JobId = std::int64_t;
using WallTime = std::chrono::system_clock::time_point;

/// A step was taken. `loss` may be NaN or infinite (a non-finite fault); consumers must cope.
struct StepRecorded {
  JobId job_id = 0;
  std::uint64_t step = 0;
  std::uint64_t epoch = 0;
  double loss = 0.0;
  double accuracy = 0.0;
  double progress = 0.0;  ///< 0..1
  std::optional<double> eta_seconds;
  WallTime ts;
};

/// A job moved between states. `reason` is empty unless the new state says why (failed, stopped).
struct JobStateChanged {
  JobId job_id = 0;
  JobState from = JobState::queued;
  JobState to = JobState::queued;
  std::string reason;
  WallTime ts;
  std::uint64_t step = 0;  ///< the job's last step when it changed state (orders it among points)
};

/// Receives the scheduler's events, in order, on the scheduler's thread. A listener must not
/// call back into the scheduler.
class JobEventListener {
 public:
  JobEventListener() = default;
  JobEventListener(const JobEventListener&) = delete;
  JobEventListener& operator=(const JobEventListener&) = delete;
  virtual ~JobEventListener() = default;

  virtual void on_step(const StepRecorded& event) = 0;
  virtual void on_state_changed(const JobStateChanged& event) = 0;
};

}  // namespace vapor::core
