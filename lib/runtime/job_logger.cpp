#include "runtime/job_logger.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "support/log.hpp"

namespace vapor::runtime {
namespace {

std::string job_label(const Scheduler& scheduler, core::JobId id) {
  const Job* job = scheduler.find(id);
  return "job " + std::to_string(id) + " " + (job ? job->spec.name : std::string("?"));
}

}  // namespace

void JobLogger::on_step(const core::StepRecorded& event) {
  const auto decile = static_cast<std::uint64_t>(std::floor(event.progress * 10.0));
  auto [it, first] = last_logged_decile_.try_emplace(event.job_id, decile);
  const bool nonfinite = !std::isfinite(event.loss);
  if (!first && decile <= it->second && !nonfinite) return;
  it->second = decile;

  const Job* job = scheduler_.find(event.job_id);
  const auto steps = job ? job->spec.total_steps() : 0;
  const auto epochs = job ? job->spec.epochs : 0;
  char line[256];
  std::snprintf(line, sizeof line,
                ": step %llu/%llu (%.0f%%) epoch %llu/%llu loss %.4g accuracy %.3f eta %s",
                static_cast<unsigned long long>(event.step), static_cast<unsigned long long>(steps),
                event.progress * 100.0, static_cast<unsigned long long>(event.epoch),
                static_cast<unsigned long long>(epochs), event.loss, event.accuracy,
                event.eta_seconds ? (std::to_string(std::lround(*event.eta_seconds)) + "s").c_str()
                                  : "unknown");
  const auto message = job_label(scheduler_, event.job_id) + line;
  if (nonfinite) {
    log::warning(message + " (non-finite loss)");
  } else {
    log::info(message);
  }
}

void JobLogger::on_state_changed(const core::JobStateChanged& event) {
  std::string message = job_label(scheduler_, event.job_id) + ": " +
                        std::string(core::to_string(event.from)) + " -> " +
                        std::string(core::to_string(event.to));
  if (!event.reason.empty()) message += " (reason: " + event.reason + ")";
  if (event.to == core::JobState::failed) {
    log::error(message);
  } else {
    log::notice(message);
  }
  if (core::is_terminal(event.to)) last_logged_decile_.erase(event.job_id);
}

}  // namespace vapor::runtime
