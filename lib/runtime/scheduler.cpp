#include "runtime/scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "core/simulator.hpp"

namespace vapor::runtime {

using core::JobEvent;
using core::JobState;

namespace {
/// A driver that falls further behind than this (a suspended process) skips ahead instead of
/// replaying every missed step at once.
constexpr std::chrono::seconds max_catch_up{1};

/// A push job runs elsewhere: it never waits for, nor holds, one of max_concurrent's slots.
bool takes_slot(const Job& job) { return job.spec.kind != core::JobKind::push; }
}  // namespace

double Job::progress() const {
  const auto total = spec.total_steps();
  if (total == 0) return reported_progress.value_or(0.0);
  return std::min(1.0, static_cast<double>(step) / static_cast<double>(total));
}

std::optional<double> Job::eta_seconds() const {
  const auto total = spec.total_steps();
  if (state != JobState::running || total == 0 || step >= total) return std::nullopt;
  return eta.eta_seconds(total - step);
}

Scheduler::Scheduler(SchedulerOptions options, const Clock& clock)
    : options_(options), clock_(clock) {}

void Scheduler::add_listener(core::JobEventListener& listener) { listeners_.push_back(&listener); }

Result<void> Scheduler::add_job(core::JobId id, core::JobSpec spec, core::WallTime created_at) {
  if (jobs_.size() >= options_.max_jobs) {
    return fail("job limit reached (scheduler.max_jobs = " + std::to_string(options_.max_jobs) +
                "); job '" + spec.name + "' was not added");
  }
  if (ids_by_name_.contains(spec.name)) return fail("a job named '" + spec.name + "' exists");
  if (jobs_.contains(id)) return fail("job id " + std::to_string(id) + " is taken");
  Job job;
  job.id = id;
  job.spec = std::move(spec);
  job.created_at = created_at;
  insert(std::move(job));
  dispatch();
  return {};
}

Result<void> Scheduler::restore_job(RestoredJob restored) {
  if (ids_by_name_.contains(restored.spec.name) || jobs_.contains(restored.id)) {
    return fail("job '" + restored.spec.name + "' (id " + std::to_string(restored.id) +
                ") restored twice");
  }
  Job job;
  job.id = restored.id;
  job.spec = std::move(restored.spec);
  job.state = restored.state;
  job.reason = std::move(restored.reason);
  job.step = restored.step;
  job.loss = restored.loss;
  job.accuracy = restored.accuracy;
  job.created_at = restored.created_at;
  job.started_at = restored.started_at;
  job.finished_at = restored.finished_at;
  job.attempt = restored.attempt;
  job.scalars = std::move(restored.scalars);
  // A manual job that was already running had been started by a user; one still queued may
  // have been too (the store kept the request).
  job.start_requested = job.state == JobState::running || restored.start_requested;
  const bool resume = job.state == JobState::running;
  insert(std::move(job));
  if (resume) {
    Job& resumed = jobs_.at(restored.id);
    if (takes_slot(resumed)) ++running_;
    resumed.last_progress = clock_.now();
    if (resumed.spec.kind != core::JobKind::simulated) {
      // A push job goes on taking points after its last stored step; its stall clock restarts.
      resumed.attempt_step = resumed.step;
      schedule_wake(resumed, stall_deadline(resumed));
    } else {
      resumed.next_step_at = clock_.now() + core::step_delay(resumed.spec, resumed.step + 1);
      schedule_wake(resumed, std::min(*resumed.next_step_at, stall_deadline(resumed)));
    }
  }
  dispatch();
  return {};
}

void Scheduler::insert(Job job) {
  const auto id = job.id;
  ids_by_name_.emplace(job.spec.name, id);
  auto [it, inserted] = jobs_.emplace(id, std::move(job));
  if (eligible(it->second)) ready_.insert({it->second.spec.priority, id});
}

bool Scheduler::eligible(const Job& job) const {
  return job.state == JobState::queued && takes_slot(job) &&
         (job.spec.start == core::StartMode::automatic || job.start_requested);
}

Result<Job*> Scheduler::find_mutable(core::JobId id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return fail("no job with id " + std::to_string(id));
  return &it->second;
}

bool Scheduler::forget(core::JobId id) {
  const auto it = jobs_.find(id);
  if (it == jobs_.end() || !core::is_terminal(it->second.state)) return false;
  // A finished job is in no ready set and holds no slot; a stale wake-up finds it gone.
  ids_by_name_.erase(it->second.spec.name);
  jobs_.erase(it);
  return true;
}

Result<void> Scheduler::start(core::JobId id) {
  auto found = find_mutable(id);
  if (!found) return found.error();
  Job& job = **found;
  if (job.state != JobState::queued) {
    return fail("job '" + job.spec.name + "' is " + std::string(core::to_string(job.state)) +
                "; only a queued job can be started");
  }
  if (job.spec.kind == core::JobKind::push) {
    return fail("job '" + job.spec.name + "' is a push job: it starts with its first batch of "
                "points");
  }
  job.start_requested = true;
  ready_.insert({job.spec.priority, job.id});
  dispatch();
  if (job.state == JobState::queued) {
    for (auto* listener : listeners_) listener->on_start_requested(job.id);
  }
  return {};
}

Result<void> Scheduler::stop(core::JobId id) {
  auto found = find_mutable(id);
  if (!found) return found.error();
  Job& job = **found;
  if (!core::next_state(job.state, JobEvent::stop)) {
    return fail("job '" + job.spec.name + "' is " + std::string(core::to_string(job.state)) +
                "; only a queued or running job can be stopped");
  }
  ready_.erase({job.spec.priority, job.id});
  transition(job, JobEvent::stop, core::reason::user_stop);
  dispatch();
  return {};
}

void Scheduler::dispatch() {
  if (holds_ > 0) return;
  while (running_ < options_.max_concurrent && !ready_.empty()) {
    const auto key = *ready_.begin();
    ready_.erase(ready_.begin());
    begin_running(jobs_.at(key.id));
  }
}

void Scheduler::begin_running(Job& job) {
  transition(job, JobEvent::start, "");
  const auto now = clock_.now();
  job.last_progress = now;
  job.eta.reset();
  if (job.spec.kind != core::JobKind::simulated) {
    // Its points come from outside; the scheduler only watches for a stall.
    job.attempt_step = 0;
    job.exit_code.reset();
    job.exit_signal.clear();
    job.next_step_at.reset();
    schedule_wake(job, stall_deadline(job));
    return;
  }
  job.next_step_at = now + core::step_delay(job.spec, job.step + 1);
  schedule_wake(job, std::min(*job.next_step_at, stall_deadline(job)));
}

SteadyTime Scheduler::stall_deadline(const Job& job) const {
  return job.last_progress + job.spec.stall_timeout.value_or(options_.stall_timeout);
}

void Scheduler::schedule_wake(Job& job, SteadyTime at) {
  ++job.wake_generation;
  wakes_.push({at, job.id, job.wake_generation});
}

void Scheduler::advance() {
  if (paused_) return;
  const auto now = clock_.now();
  const auto wall_now = clock_.wall_now();
  std::size_t taken = 0;
  while (!wakes_.empty() && wakes_.top().at <= now && taken < options_.max_steps_per_advance) {
    const Wake wake = wakes_.top();
    wakes_.pop();
    auto it = jobs_.find(wake.id);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    // Skip wake-ups made stale by a later reschedule, a stop or a finish.
    if (job.state != JobState::running || wake.generation != job.wake_generation) continue;
    take_step(job, wake.at, now, wall_now);
    ++taken;
  }
}

void Scheduler::take_step(Job& job, SteadyTime due, SteadyTime now, core::WallTime wall_now) {
  if (!job.next_step_at || *job.next_step_at > due) {
    if (const auto deadline = stall_deadline(job); deadline > now) {
      schedule_wake(job, deadline);  // a real job reported since this wake-up was set
      return;
    }
    // Woken by the stall deadline: no step came in time.
    transition(job, JobEvent::fail, core::reason::stalled);
    dispatch();
    return;
  }
  const auto next = job.step + 1;
  const auto simulated = core::simulate_step(job.spec, next);
  switch (simulated.kind) {
    case core::StepKind::crash:
      transition(job, JobEvent::fail, core::reason::crashed);
      dispatch();
      return;
    case core::StepKind::stall:
      job.next_step_at.reset();
      schedule_wake(job, stall_deadline(job));
      return;
    case core::StepKind::point:
      break;
  }

  job.step = next;
  job.loss = simulated.loss;
  job.accuracy = simulated.accuracy;
  job.last_progress = due;
  job.eta.observe(due.time_since_epoch());

  core::StepRecorded event;
  event.job_id = job.id;
  event.step = next;
  event.epoch = simulated.epoch;
  event.loss = simulated.loss;
  event.accuracy = simulated.accuracy;
  event.progress = job.progress();
  event.eta_seconds = job.eta_seconds();
  event.ts = wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(now - due);
  for (auto* listener : listeners_) listener->on_step(event);

  if (!std::isfinite(simulated.loss) && job.spec.on_nonfinite == core::NonFinitePolicy::fail) {
    transition(job, JobEvent::fail, core::reason::nonfinite_loss);
    dispatch();
    return;
  }
  if (next >= job.spec.total_steps()) {
    transition(job, JobEvent::complete, "");
    dispatch();
    return;
  }
  auto next_at = due + core::step_delay(job.spec, next + 1);
  if (next_at < now - max_catch_up) {
    // The loop itself was late (a suspended process, a long commit): skip ahead, and do not
    // count our own lateness as the job's stall.
    next_at = now;
    job.last_progress = now;
    job.eta.reset();
  }
  job.next_step_at = next_at;
  schedule_wake(job, std::min(next_at, stall_deadline(job)));
}

Result<void> Scheduler::record_point(core::JobId id, const core::ReportedPoint& point) {
  auto found = find_mutable(id);
  if (!found) return found.error();
  Job& job = **found;
  if (job.spec.kind == core::JobKind::simulated) {
    return fail("job '" + job.spec.name + "' is simulated; its points come from the simulator");
  }
  const bool starts = job.spec.kind == core::JobKind::push && job.state == JobState::queued;
  if (job.state != JobState::running && !starts) {
    return fail("job '" + job.spec.name + "' is " + std::string(core::to_string(job.state)) +
                "; points are taken while it runs");
  }
  if (point.step <= job.attempt_step) {
    return fail("step " + std::to_string(point.step) + " does not come after step " +
                std::to_string(job.attempt_step) + " (steps must increase)");
  }
  // The per-job name limit keeps /metrics and the page bounded whatever a trainer writes.
  std::size_t new_names = 0;
  for (const core::NamedScalar& scalar : point.scalars) {
    const bool known = std::any_of(job.scalars.begin(), job.scalars.end(),
                                   [&](const auto& seen) { return seen.name == scalar.name; });
    if (!known && job.scalars.size() + ++new_names > core::max_scalar_names) {
      return fail("named scalar \"" + scalar.name + "\" is one name too many: job '" +
                  job.spec.name + "' already reports " + std::to_string(job.scalars.size()) +
                  " (at most " + std::to_string(core::max_scalar_names) + " per job)");
    }
  }
  if (starts) begin_running(job);  // a push job runs from its first point
  core::merge_scalars(job.scalars, point.scalars);
  const auto now = clock_.now();
  job.attempt_step = point.step;
  job.step = point.step;
  job.loss = point.loss;
  if (point.accuracy) job.accuracy = *point.accuracy;
  if (point.progress) job.reported_progress = point.progress;
  job.last_progress = now;
  job.eta.observe(now.time_since_epoch());

  core::StepRecorded event;
  event.job_id = job.id;
  event.step = point.step;
  const auto per_epoch = job.spec.steps_per_epoch;
  event.epoch = point.epoch.value_or(per_epoch == 0 ? 0 : (point.step - 1) / per_epoch + 1);
  event.loss = point.loss;
  event.accuracy = job.accuracy;
  event.progress = job.progress();
  event.eta_seconds = job.eta_seconds();
  event.ts = point.ts.value_or(clock_.wall_now());
  event.scalars = point.scalars;
  for (auto* listener : listeners_) listener->on_step(event);

  if (!std::isfinite(point.loss) && job.spec.on_nonfinite == core::NonFinitePolicy::fail) {
    transition(job, JobEvent::fail, core::reason::nonfinite_loss);
    dispatch();
    return {};
  }
  // No new wake-up per point: the pending one re-arms itself from the latest progress when it
  // comes (take_step), so a fast trainer never fills the heap with stale ones.
  return {};
}

void Scheduler::finish(core::JobId id, const ExternalEnd& end) {
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second.state != JobState::running) return;
  Job& job = it->second;
  job.exit_code = end.exit_code;
  job.exit_signal = end.signal;
  transition(job, end.to == JobState::complete ? JobEvent::complete : JobEvent::fail, end.reason);
  dispatch();
}

void Scheduler::transition(Job& job, JobEvent event, std::string_view reason) {
  const auto to = core::next_state(job.state, event);
  if (!to) return;  // callers check legality first; a repeated event is a no-op
  const auto from = job.state;
  const auto ts = clock_.wall_now();
  if (from == JobState::running) {
    if (takes_slot(job)) --running_;
    ++job.wake_generation;  // drop any pending wake-up
    job.next_step_at.reset();
  }
  job.state = *to;
  job.reason = std::string(reason);
  if (*to == JobState::running) {
    if (takes_slot(job)) ++running_;
    if (!job.started_at) job.started_at = ts;
  }
  if (core::is_terminal(*to)) job.finished_at = ts;

  const core::JobStateChanged changed{job.id, from, *to, job.reason, ts, job.step};
  for (auto* listener : listeners_) listener->on_state_changed(changed);
}

std::optional<SteadyTime> Scheduler::next_deadline() {
  if (paused_) return std::nullopt;
  // Drop wake-ups made stale by a reschedule, a stop or a finish, so the deadline is real.
  while (!wakes_.empty()) {
    const auto& top = wakes_.top();
    auto it = jobs_.find(top.id);
    if (it != jobs_.end() && it->second.state == JobState::running &&
        it->second.wake_generation == top.generation) {
      return top.at;
    }
    wakes_.pop();
  }
  return std::nullopt;
}

void Scheduler::set_paused(bool paused) {
  if (paused == paused_) return;
  paused_ = paused;
  if (paused_) return;
  // Resume every running job from now: a pause is not a stall.
  const auto now = clock_.now();
  for (auto& [id, job] : jobs_) {
    if (job.state != JobState::running) continue;
    job.last_progress = now;
    job.eta.reset();
    if (job.next_step_at) {
      job.next_step_at = now + core::step_delay(job.spec, job.step + 1);
      schedule_wake(job, std::min(*job.next_step_at, stall_deadline(job)));
    } else {
      schedule_wake(job, stall_deadline(job));
    }
  }
}

const Job* Scheduler::find(core::JobId id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const Job* Scheduler::find(std::string_view name) const {
  auto it = ids_by_name_.find(std::string(name));
  return it == ids_by_name_.end() ? nullptr : find(it->second);
}

core::JobId Scheduler::max_id() const { return jobs_.empty() ? 0 : jobs_.rbegin()->first; }

}  // namespace vapor::runtime
