#pragma once

#include <cstdint>
#include <unordered_map>

#include "core/job_events.hpp"
#include "runtime/scheduler.hpp"

namespace vapor::runtime {

/// Logs each state transition and each job's progress (its first step, then every tenth of the
/// run) as one journald-friendly line per event. Reads job names from the scheduler; never
/// changes it. Event-loop thread only.
class JobLogger final : public core::JobEventListener {
 public:
  explicit JobLogger(const Scheduler& scheduler) : scheduler_(scheduler) {}

  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged& event) override;

 private:
  const Scheduler& scheduler_;
  std::unordered_map<core::JobId, std::uint64_t> last_logged_decile_;
};

}  // namespace vapor::runtime
