#include "app/job_service.hpp"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "core/simulator.hpp"
#include "http/access.hpp"
#include "http/request_target.hpp"
#include "metrics/vapor_metrics.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "store/sqlite_job_store.hpp"
#include "support/log.hpp"
#include "support/secret_token.hpp"

namespace vapor::app {
namespace {

metrics::JobIdentity identity_of(core::JobId id, const core::JobSpec& spec) {
  return {id, spec.name, spec.model, spec.epochs, spec.total_steps(), spec.batch_size,
          spec.learning_rate};
}

/// Where a restored job stands, for its metrics.
metrics::JobStatus status_of(const runtime::RestoredJob& job, core::WallTime last_progress_at) {
  metrics::JobStatus status;
  status.state = job.state;
  status.reason = job.reason;
  status.step = job.step;
  status.epoch = core::epoch_of_step(job.spec, job.step);
  status.loss = job.loss;
  status.accuracy = job.accuracy;
  status.started_at = job.started_at;
  status.finished_at = job.finished_at;
  status.last_progress_at = last_progress_at;
  status.scalars = job.scalars;
  return status;
}

}  // namespace

JobService::JobService(JobServiceOptions options, runtime::Scheduler& scheduler,
                       std::function<void(const store::NewJob&)> record_job,
                       metrics::VaporMetrics& metrics, const runtime::Clock& clock,
                       std::function<void()> rearm)
    : options_(std::move(options)),
      scheduler_(scheduler),
      record_job_(std::move(record_job)),
      metrics_(metrics),
      clock_(clock),
      rearm_(std::move(rearm)) {}

Result<void> JobService::restore(store::SqliteJobStore& store) {
  auto stored = store.load_jobs();
  if (!stored) return stored.error();
  std::size_t resumed = 0;
  // Beyond max_jobs, the jobs that finished first stay in the database only.
  std::unordered_set<core::JobId> left_in_store;
  if (stored->size() > options_.max_jobs) {
    std::vector<std::pair<core::WallTime, core::JobId>> finished;
    for (const auto& row : *stored) {
      if (core::is_terminal(row.state)) {
        finished.emplace_back(row.finished_at.value_or(row.created_at), row.id);
      }
    }
    std::sort(finished.begin(), finished.end());
    const std::size_t excess = std::min(stored->size() - options_.max_jobs, finished.size());
    for (std::size_t i = 0; i < excess; ++i) left_in_store.insert(finished[i].second);
    log::notice(std::to_string(stored->size()) + " jobs in " + options_.database +
                " pass scheduler.max_jobs = " + std::to_string(options_.max_jobs) + ": the " +
                std::to_string(excess) +
                " that finished first stay there and are not held in memory");
  }
  auto hold = scheduler_.hold_dispatch();  // priorities, not row order, decide who starts
  config::SpecDefaults stored_defaults = options_.spec_defaults;
  stored_defaults.allow_numeric_names = true;  // named before all-digit names were refused
  for (auto& row : *stored) {
    next_id_ = std::max(next_id_, row.id + 1);
    if (left_in_store.contains(row.id)) {
      retire(row.id, row.name);
      continue;
    }
    auto spec = config::parse_job_spec(
        row.spec_json, "job " + std::to_string(row.id) + " in " + options_.database,
        stored_defaults);
    if (!spec.ok()) {
      log::error("cannot restore job " + std::to_string(row.id) + " '" + row.name +
                 "'; its history stays in the database: " + config::format_errors(spec.errors));
      unrestorable_names_.insert(row.name);  // the name stays taken
      continue;
    }
    if (!row.push_token_sha256.empty()) push_token_hashes_[row.id] = row.push_token_sha256;
    runtime::RestoredJob job;
    job.id = row.id;
    job.spec = std::move(spec.value);
    job.state = row.state;
    job.reason = row.reason;
    job.step = row.step;
    job.created_at = row.created_at;
    job.started_at = row.started_at;
    job.finished_at = row.finished_at;
    job.scalars = std::move(row.scalars);  // each name's latest, not only the last point's
    job.start_requested = row.start_requested;
    core::WallTime last_progress_at = row.created_at;
    if (row.step > 0) {
      auto last = store.load_points(row.id, row.step - 1, 1);
      if (last && !last->empty()) {
        job.loss = last->front().loss;
        job.accuracy = last->front().accuracy;
        last_progress_at = last->front().ts;
      }
    }
    // A trainer never outlives vapord, so a command job that was running has lost its
    // process: it fails (daemon_restart), or runs again where its spec asks for that.
    const bool lost_process =
        job.state == core::JobState::running && job.spec.kind == core::JobKind::command;
    const bool requeue =
        lost_process && job.spec.command.on_daemon_restart == core::OnDaemonRestart::requeue;
    if (job.spec.kind == core::JobKind::command) {
      auto transitions = store.load_transitions(row.id);
      if (transitions) {
        job.attempt = 1 + static_cast<std::uint32_t>(std::count_if(
                              transitions->begin(), transitions->end(),
                              [](const auto& t) { return t.to == core::JobState::running; }));
      }
    }
    if (requeue) {
      job.state = core::JobState::queued;
      log::notice("job " + std::to_string(job.id) + " " + job.spec.name +
                  ": its trainer ended with vapord; queued again (on_daemon_restart: requeue, "
                  "attempt " + std::to_string(job.attempt) + ")");
    } else if (job.state == core::JobState::running && !lost_process) {
      ++resumed;
      log::notice("job " + std::to_string(job.id) + " " + job.spec.name +
                  ": resuming after step " + std::to_string(job.step));
    }
    metrics_.add_job(identity_of(job.id, job.spec), status_of(job, last_progress_at));
    const core::JobId id = job.id;
    if (auto restored = scheduler_.restore_job(std::move(job)); !restored) {
      return restored.error();
    }
    if (lost_process && !requeue) {
      log::warning("job " + std::to_string(id) + " " + scheduler_.find(id)->spec.name +
                   ": its trainer ended with vapord; failed (daemon_restart)");
      scheduler_.finish(id, {core::JobState::failed, std::string(core::reason::daemon_restart),
                             std::nullopt, {}});
    }
  }
  log::info("restored " + std::to_string(stored->size() - left_in_store.size()) + " jobs from " +
            options_.database + " (" + std::to_string(resumed) + " resuming)");
  return {};
}

void JobService::queue_refused() {
  last_reload_successful_ = false;
  metrics_.set_config_reload(false, clock_.wall_now());
}

bool JobService::load_queue(std::string_view why) {
  const std::string queue_name = options_.queue.string();
  auto queue =
      config::load_queue_file(options_.queue, options_.spec_defaults, options_.queue_max_bytes);
  if (!queue.ok()) {
    log::error("queue " + queue_name + " not loaded (" + std::string(why) + "); nothing changed: " +
               std::to_string(queue.errors.size()) + " error(s)");
    for (const auto& error : queue.errors) log::error(error.to_string());
    queue_refused();
    return false;
  }
  // Reconcile: the file adds jobs; it never changes or deletes one that exists.
  std::vector<core::JobSpec> fresh;
  for (auto& spec : queue.value.jobs) {
    const runtime::Job* existing = scheduler_.find(spec.name);
    if (unrestorable_names_.contains(spec.name)) {
      log::warning("job '" + spec.name +
                   "' exists in the database but could not be restored; the queue file's entry "
                   "is ignored");
    } else if (retired_names_.contains(spec.name)) {
      continue;  // finished long ago and forgotten to make room: not new
    } else if (existing == nullptr) {
      fresh.push_back(std::move(spec));
    } else if (existing->spec != spec) {
      log::warning("job '" + spec.name +
                   "' already exists; its recorded spec is kept and the queue file's changes "
                   "to it are ignored");
    }
  }
  if (!make_room(fresh.size())) {
    log::error("queue " + queue_name + " not loaded (" + std::string(why) + "): " +
               std::to_string(fresh.size()) + " new jobs would pass scheduler.max_jobs = " +
               std::to_string(options_.max_jobs) +
               " even with every finished job forgotten; nothing changed");
    queue_refused();
    return false;
  }
  {
    auto hold = scheduler_.hold_dispatch();  // priorities, not file order, decide who starts
    for (auto& spec : fresh) {
      core::JobId id = 0;
      if (auto refused = add(std::move(spec), id)) log::error(refused->message);
    }
  }
  rearm_();
  log::info("queue " + queue_name + " loaded (" + std::string(why) + "): " +
            std::to_string(queue.value.jobs.size()) + " jobs in file, " +
            std::to_string(fresh.size()) + " new");
  last_reload_successful_ = true;
  queue_loaded_ = true;
  metrics_.set_config_reload(true, clock_.wall_now());
  return true;
}

std::optional<http::ControlError> JobService::name_taken(const std::string& name) const {
  if (const runtime::Job* existing = scheduler_.find(name)) {
    return http::ControlError{http::ControlFailure::conflict,
                              "a job named \"" + name + "\" exists (id " +
                                  std::to_string(existing->id) + "); job names are unique"};
  }
  if (unrestorable_names_.contains(name)) {
    return http::ControlError{http::ControlFailure::conflict,
                              "a job named \"" + name +
                                  "\" exists in the database (it could not be restored); job "
                                  "names are unique"};
  }
  if (retired_names_.contains(name)) {
    return http::ControlError{http::ControlFailure::conflict,
                              "a job named \"" + name +
                                  "\" exists in the database (finished, no longer held in "
                                  "memory under scheduler.max_jobs); job names are unique"};
  }
  return std::nullopt;
}

void JobService::retire(core::JobId id, const std::string& name) {
  retired_names_.emplace(name, id);
  retired_ids_.insert(id);
}

std::optional<core::JobId> JobService::retired(std::string_view ref) const {
  if (const auto id = http::parse_unsigned(ref);
      id && *id <= static_cast<std::uint64_t>(std::numeric_limits<core::JobId>::max()) &&
      retired_ids_.contains(static_cast<core::JobId>(*id))) {
    return static_cast<core::JobId>(*id);
  }
  if (const auto named = retired_names_.find(std::string(ref)); named != retired_names_.end()) {
    return named->second;
  }
  return std::nullopt;
}

http::ControlError JobService::job_limit_reached() const {
  return {http::ControlFailure::unavailable,
          "job limit reached: all scheduler.max_jobs = " + std::to_string(options_.max_jobs) +
              " jobs are queued or running (finished jobs make room, those that finished first "
              "first); raise scheduler.max_jobs, or stop or wait for some"};
}

bool JobService::make_room(std::size_t count) {
  const std::size_t held = scheduler_.jobs().size();
  if (held + count <= options_.max_jobs) return true;
  const std::size_t excess = held + count - options_.max_jobs;
  std::vector<std::pair<core::WallTime, core::JobId>> finished;
  for (const auto& [id, job] : scheduler_.jobs()) {
    if (core::is_terminal(job.state)) {
      finished.emplace_back(job.finished_at.value_or(job.created_at), id);
    }
  }
  if (finished.size() < excess) return false;
  std::partial_sort(finished.begin(), finished.begin() + static_cast<std::ptrdiff_t>(excess),
                    finished.end());
  for (std::size_t i = 0; i < excess; ++i) {
    const core::JobId id = finished[i].second;
    const runtime::Job& job = *scheduler_.find(id);
    retire(id, job.spec.name);
    metrics_.forget_job(id, job.state);
    push_token_hashes_.erase(id);
    scheduler_.forget(id);
  }
  std::string ids;
  for (std::size_t i = 0; i < std::min<std::size_t>(excess, 5); ++i) {
    ids += (i == 0 ? "" : ", ") + std::to_string(finished[i].second);
  }
  if (excess > 5) ids += " and " + std::to_string(excess - 5) + " more";
  log::notice(std::to_string(excess) + " finished job(s) no longer held in memory, to make room "
              "under scheduler.max_jobs = " + std::to_string(options_.max_jobs) + " (ids " + ids +
              "); their history stays in the database");
  return true;
}

std::optional<http::ControlError> JobService::add(core::JobSpec spec, core::JobId& id,
                                                  std::string push_token_sha256) {
  if (auto taken = name_taken(spec.name)) return taken;
  if (!make_room(1)) return job_limit_reached();
  id = next_id_++;
  const auto now = clock_.wall_now();
  record_job_({id, spec.name, config::job_spec_to_json(spec), now, push_token_sha256});
  if (!push_token_sha256.empty()) push_token_hashes_[id] = std::move(push_token_sha256);
  metrics_.add_job(identity_of(id, spec), metrics::JobStatus{});
  log::notice("job " + std::to_string(id) + " " + spec.name + ": queued (" + spec.model + ", " +
              std::to_string(spec.total_steps()) + " steps" +
              (spec.start == core::StartMode::manual ? ", manual start" : "") + ")");
  if (auto added = scheduler_.add_job(id, std::move(spec), now); !added) {
    return http::ControlError{http::ControlFailure::invalid, added.error().message};
  }
  rearm_();
  return std::nullopt;
}

std::optional<http::ControlError> JobService::check_exists(core::JobId id) const {
  if (scheduler_.find(id) != nullptr) return std::nullopt;
  return http::ControlError{http::ControlFailure::not_found,
                            "no job with id " + std::to_string(id)};
}

std::optional<http::ControlError> JobService::submit(core::JobSpec spec, core::JobId& id,
                                                     std::string& push_token) {
  if (closed_) return http::ControlError{http::ControlFailure::unavailable, "vapord is stopping"};
  if (spec.kind == core::JobKind::command && !options_.allow_command_jobs) {
    return http::ControlError{
        http::ControlFailure::forbidden,
        "command jobs run a program as vapord's user and come from the queue file only; "
        "api.allow_command_jobs: true lets the API create them",
        "command_jobs_disabled"};
  }
  if (spec.kind != core::JobKind::push) return add(std::move(spec), id);
  auto token = random_token();
  auto hash = token ? sha256_hex(*token) : std::nullopt;
  if (!hash) {
    return http::ControlError{http::ControlFailure::unavailable,
                              token ? "cannot hash a push token (OpenSSL SHA-256 failed)"
                                    : token.error().message};
  }
  if (auto refused = add(std::move(spec), id, std::move(*hash))) return refused;
  push_token = std::move(*token);
  return std::nullopt;
}

std::optional<http::ControlError> JobService::refuse_push(core::JobId id) const {
  const runtime::Job* job = scheduler_.find(id);
  if (job == nullptr) {
    return http::ControlError{http::ControlFailure::not_found, "no job with id " +
                                                                   std::to_string(id)};
  }
  if (job->spec.kind != core::JobKind::push) {
    return http::ControlError{http::ControlFailure::conflict,
                              "job '" + job->spec.name + "' is not a push job; its points come " +
                                  (job->spec.kind == core::JobKind::command
                                       ? "from the trainer vapord runs"
                                       : "from the simulator"),
                              "not_a_push_job"};
  }
  if (core::is_terminal(job->state)) {
    return http::ControlError{http::ControlFailure::conflict,
                              "job '" + job->spec.name + "' has ended (" +
                                  std::string(core::to_string(job->state)) +
                                  (job->reason.empty() ? "" : ", " + job->reason) +
                                  "); it takes no more points",
                              "job_finished"};
  }
  return std::nullopt;
}

std::optional<http::ControlError> JobService::push_points(
    core::JobId id, const std::vector<core::ReportedPoint>& points, std::size_t& accepted) {
  accepted = 0;
  if (auto refused = refuse_push(id)) return refused;
  const runtime::Job& job = *scheduler_.find(id);
  if (scheduler_.paused()) {
    return http::ControlError{http::ControlFailure::busy,
                              "the store is behind (store.max_pending_rows rows wait for a "
                              "commit); nothing was recorded: send the batch again shortly"};
  }
  if (!points.empty() && points.front().step <= job.step) {
    return http::ControlError{http::ControlFailure::conflict,
                              "point 0: step " + std::to_string(points.front().step) +
                                  " does not come after step " + std::to_string(job.step) +
                                  ", the job's last recorded step; nothing was recorded",
                              "step_not_increasing"};
  }
  // The per-job name limit, over the whole batch, before anything is recorded.
  core::Scalars names = job.scalars;
  for (std::size_t i = 0; i < points.size(); ++i) {
    core::merge_scalars(names, points[i].scalars);
    if (names.size() > core::max_scalar_names) {
      return http::ControlError{http::ControlFailure::invalid,
                                "point " + std::to_string(i) + ": more than " +
                                    std::to_string(core::max_scalar_names) +
                                    " named scalars in this job; nothing was recorded",
                                "invalid_points"};
    }
  }
  for (const core::ReportedPoint& point : points) {
    if (auto recorded = scheduler_.record_point(id, point); !recorded) {
      // Checked above, so this is a bug: say so rather than drop the rest quietly.
      log::error("job " + std::to_string(id) + ": a pushed point checked as valid was refused: " +
                 recorded.error().message);
      break;
    }
    ++accepted;
    if (scheduler_.find(id)->state != core::JobState::running) break;  // a NaN ended it
  }
  rearm_();
  return std::nullopt;
}

std::optional<http::ControlError> JobService::finish(core::JobId id, core::JobState state,
                                                     std::string reason) {
  if (auto refused = refuse_push(id)) return refused;
  const runtime::Job& job = *scheduler_.find(id);
  if (job.state != core::JobState::running) {
    return http::ControlError{http::ControlFailure::conflict,
                              "job '" + job.spec.name +
                                  "' has not started: a push job runs from its first batch of "
                                  "points (stop it instead to drop it)",
                              "not_started"};
  }
  if (state == core::JobState::failed && reason.empty()) reason = "reported_failure";
  log::notice("job " + std::to_string(id) + " " + job.spec.name + ": its trainer reported " +
              std::string(core::to_string(state)) + (reason.empty() ? "" : " (" + reason + ")"));
  scheduler_.finish(id, {state, std::move(reason), std::nullopt, {}});
  rearm_();
  return std::nullopt;
}

bool JobService::push_token_matches(core::JobId id, std::string_view token) const {
  const auto found = push_token_hashes_.find(id);
  if (found == push_token_hashes_.end()) return false;
  const auto hash = sha256_hex(token);
  return hash && http::constant_time_equal(found->second, *hash);
}

std::optional<http::ControlError> JobService::start(core::JobId id) {
  if (auto missing = check_exists(id)) return missing;
  if (auto started = scheduler_.start(id); !started) {
    return http::ControlError{http::ControlFailure::conflict, started.error().message};
  }
  log::notice("job " + std::to_string(id) + " " + scheduler_.find(id)->spec.name +
              ": start requested through the API");
  rearm_();
  return std::nullopt;
}

std::optional<http::ControlError> JobService::stop(core::JobId id) {
  if (auto missing = check_exists(id)) return missing;
  if (auto stopped = scheduler_.stop(id); !stopped) {
    return http::ControlError{http::ControlFailure::conflict, stopped.error().message};
  }
  rearm_();
  return std::nullopt;
}

JobCounts JobService::counts() const {
  JobCounts counts;
  for (const auto& [id, job] : scheduler_.jobs()) {
    switch (job.state) {
      case core::JobState::queued: ++counts.queued; break;
      case core::JobState::running: ++counts.running; break;
      case core::JobState::failed: ++counts.failed; [[fallthrough]];
      case core::JobState::complete:
      case core::JobState::stopped: ++counts.done; break;
    }
  }
  return counts;
}

}  // namespace vapor::app
