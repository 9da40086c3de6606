#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/job_state.hpp"

namespace vapor::core {

using JobId = std::int64_t;
using WallTime = std::chrono::system_clock::time_point;

/// A real trainer's own number beside its loss (`val_loss`, `lr`, `grad_norm`, ...). The name is
/// `[a-z][a-z0-9_]{0,63}`; the value may be non-finite.
struct NamedScalar {
  std::string name;
  double value = 0.0;

  friend bool operator==(const NamedScalar&, const NamedScalar&) = default;
};

/// The named scalars of one point, each name once, in the order the trainer wrote them.
using Scalars = std::vector<NamedScalar>;

/// At most this many named scalars in one point, and names in one job.
inline constexpr std::size_t max_scalar_names = 32;

/// Folds a point's scalars into each name's latest value (new names appended, in order).
inline void merge_scalars(Scalars& latest, const Scalars& update) {
  for (const NamedScalar& scalar : update) {
    auto known = std::find_if(latest.begin(), latest.end(),
                              [&](const NamedScalar& seen) { return seen.name == scalar.name; });
    if (known == latest.end()) {
      latest.push_back(scalar);
    } else {
      known->value = scalar.value;
    }
  }
}

/// One point as a real trainer (command or push job) reported it, before the scheduler takes it.
/// A loss of `null`, `"NaN"` or `"Infinity"` is kept as the non-finite double it stands for.
struct ReportedPoint {
  std::uint64_t step = 0;  ///< >= 1
  double loss = 0.0;
  std::optional<std::uint64_t> epoch;
  std::optional<double> accuracy;
  std::optional<double> progress;  ///< 0..1, used when the job plans no steps
  std::optional<WallTime> ts;
  Scalars scalars;
};

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
  Scalars scalars;  ///< a real job's named scalars at this step (none for simulated jobs)
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
  /// A user started a manual job that still waits for a slot (the store keeps that, so the start
  /// survives a restart). Most listeners have nothing to do with it.
  virtual void on_start_requested(JobId /*job_id*/) {}
};

}  // namespace vapor::core
