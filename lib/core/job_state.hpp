#pragma once

#include <optional>
#include <string_view>

namespace vapor::core {

/// Lifecycle of a job: queued → running → complete | failed | stopped.
enum class JobState { queued, running, complete, failed, stopped };

/// What can happen to a job. Which events a state accepts is decided by `next_state`.
enum class JobEvent {
  start,     ///< a slot was granted (or a user started a manual job)
  complete,  ///< the last step was recorded
  fail,      ///< a crash, non-finite loss, stall, divergence or lost run
  stop,      ///< a user's stop; pages nobody
};

inline constexpr JobState all_job_states[] = {JobState::queued, JobState::running,
                                              JobState::complete, JobState::failed,
                                              JobState::stopped};
inline constexpr JobEvent all_job_events[] = {JobEvent::start, JobEvent::complete,
                                              JobEvent::fail, JobEvent::stop};

/// The state after `event`, or nothing when `state` forbids it.
[[nodiscard]] std::optional<JobState> next_state(JobState state, JobEvent event);

[[nodiscard]] bool is_terminal(JobState state);

[[nodiscard]] std::string_view to_string(JobState state);
[[nodiscard]] std::string_view to_string(JobEvent event);
[[nodiscard]] std::optional<JobState> parse_job_state(std::string_view text);

/// Standard reasons carried by a failed job.
namespace reason {
inline constexpr std::string_view crashed = "crashed";
inline constexpr std::string_view nonfinite_loss = "nonfinite_loss";
inline constexpr std::string_view stalled = "stalled";
inline constexpr std::string_view diverged = "diverged";
inline constexpr std::string_view daemon_restart = "daemon_restart";
inline constexpr std::string_view user_stop = "user";
inline constexpr std::string_view exit_code = "exit_code";  ///< a command job exited non-zero
inline constexpr std::string_view signal = "signal";        ///< a command job was killed
}  // namespace reason

}  // namespace vapor::core
