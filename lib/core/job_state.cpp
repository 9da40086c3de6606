#include "core/job_state.hpp"

namespace vapor::core {

std::optional<JobState> next_state(JobState state, JobEvent event) {
  switch (state) {
    case JobState::queued:
      if (event == JobEvent::start) return JobState::running;
      if (event == JobEvent::stop) return JobState::stopped;
      return std::nullopt;
    case JobState::running:
      if (event == JobEvent::complete) return JobState::complete;
      if (event == JobEvent::fail) return JobState::failed;
      if (event == JobEvent::stop) return JobState::stopped;
      return std::nullopt;
    case JobState::complete:
    case JobState::failed:
    case JobState::stopped:
      return std::nullopt;
  }
  return std::nullopt;
}

bool is_terminal(JobState state) {
  return state == JobState::complete || state == JobState::failed || state == JobState::stopped;
}

std::string_view to_string(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::complete: return "complete";
    case JobState::failed: return "failed";
    case JobState::stopped: return "stopped";
  }
  return "unknown";
}

std::string_view to_string(JobEvent event) {
  switch (event) {
    case JobEvent::start: return "start";
    case JobEvent::complete: return "complete";
    case JobEvent::fail: return "fail";
    case JobEvent::stop: return "stop";
  }
  return "unknown";
}

std::optional<JobState> parse_job_state(std::string_view text) {
  for (const JobState state : all_job_states) {
    if (to_string(state) == text) return state;
  }
  return std::nullopt;
}

}  // namespace vapor::core
