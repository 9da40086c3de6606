#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/queue_file.hpp"
#include "core/job_spec.hpp"
#include "http/router.hpp"
#include "support/result.hpp"

namespace vapor::runtime {
class Clock;
class Scheduler;
}  // namespace vapor::runtime
namespace vapor::store {
class SqliteJobStore;
struct NewJob;
}
namespace vapor::metrics {
class VaporMetrics;
}

namespace vapor::app {

struct JobServiceOptions {
  config::SpecDefaults spec_defaults;
  std::size_t max_jobs = 10'000;           ///< scheduler.max_jobs
  std::filesystem::path queue;             ///< the queue file
  std::size_t queue_max_bytes = 1024 * 1024;  ///< a larger queue file is refused
  std::string database;                    ///< named in restore messages
  bool allow_command_jobs = false;         ///< api.allow_command_jobs: submit may create them
};

/// How many jobs stand where, for systemd's STATUS= line.
struct JobCounts {
  std::size_t queued = 0;
  std::size_t running = 0;
  std::size_t done = 0;    ///< complete, failed or stopped
  std::size_t failed = 0;  ///< of `done`
};

/// The jobs vapord knows and every way they change from outside the scheduler: restore from the
/// store at start-up, the queue file (load and reconcile on start, SIGHUP and file changes), and
/// the API (submit, start, stop, and a push job's points and finish). It hands out ids and
/// decides, in one place, when a name is taken or the job limit reached. A new job goes to the
/// store (`record_job`), the metrics and the scheduler, in that order, and `rearm` runs after
/// anything that may move the scheduler's next deadline. It keeps push tokens as their SHA-256.
/// Event-loop thread only.
class JobService final : public http::JobControl {
 public:
  JobService(JobServiceOptions options, runtime::Scheduler& scheduler,
             std::function<void(const store::NewJob&)> record_job,
             metrics::VaporMetrics& metrics, const runtime::Clock& clock,
             std::function<void()> rearm);

  /// Puts back every job `store` holds (read directly: start-up, before anything is served);
  /// running ones resume after their last committed step. A job whose stored spec no longer
  /// parses is logged and left in the database, its name taken. Beyond max_jobs, the finished
  /// jobs that finished first stay in the database only (their names taken).
  Result<void> restore(store::SqliteJobStore& store);
  /// Loads the queue file and adds its new jobs, all or nothing; logs what happened and sets
  /// vapor_config_last_reload_successful. Returns false when the file was refused.
  bool load_queue(std::string_view why);
  /// From now on submissions are refused (503): vapord is stopping.
  void close() { closed_ = true; }

  std::optional<http::ControlError> submit(core::JobSpec spec, core::JobId& id,
                                           std::string& push_token) override;
  /// Submits a job that is not a push job (or whose token the caller does not need).
  std::optional<http::ControlError> submit(core::JobSpec spec, core::JobId& id) {
    std::string unused;
    return submit(std::move(spec), id, unused);
  }
  std::optional<http::ControlError> start(core::JobId id) override;
  std::optional<http::ControlError> stop(core::JobId id) override;
  std::optional<http::ControlError> push_points(core::JobId id,
                                                const std::vector<core::ReportedPoint>& points,
                                                std::size_t& accepted) override;
  std::optional<http::ControlError> finish(core::JobId id, core::JobState state,
                                           std::string reason) override;
  [[nodiscard]] bool push_token_matches(core::JobId id, std::string_view token) const override;
  [[nodiscard]] std::optional<core::JobId> retired(std::string_view ref) const override;

  [[nodiscard]] bool queue_loaded() const { return queue_loaded_; }
  [[nodiscard]] bool last_reload_successful() const { return last_reload_successful_; }
  [[nodiscard]] JobCounts counts() const;

 private:
  /// Adds a new job everywhere it lives; conflict when the name is taken, unavailable at the
  /// job limit. `push_token_sha256` goes to the store with it.
  std::optional<http::ControlError> add(core::JobSpec spec, core::JobId& id,
                                        std::string push_token_sha256 = {});
  /// Why job `id` takes no push now (missing, not a push job, or finished); nothing when it may.
  [[nodiscard]] std::optional<http::ControlError> refuse_push(core::JobId id) const;
  [[nodiscard]] std::optional<http::ControlError> name_taken(const std::string& name) const;
  [[nodiscard]] std::optional<http::ControlError> check_exists(core::JobId id) const;
  void queue_refused();
  /// Room for `count` new jobs under max_jobs: forgets the finished jobs that finished first,
  /// as many as it takes (their history stays in the database, their names taken). False, and
  /// nothing forgotten, when queued and running jobs leave too little room.
  bool make_room(std::size_t count);
  [[nodiscard]] http::ControlError job_limit_reached() const;

  JobServiceOptions options_;
  runtime::Scheduler& scheduler_;
  std::function<void(const store::NewJob&)> record_job_;
  metrics::VaporMetrics& metrics_;
  const runtime::Clock& clock_;
  std::function<void()> rearm_;
  core::JobId next_id_ = 1;
  std::unordered_set<std::string> unrestorable_names_;  ///< in the database, not the scheduler
  /// Finished jobs forgotten to make room (or not restored for want of it): in the database,
  /// not the scheduler. Their names stay taken, as the database's unique names require, and
  /// the API can say what became of them. (A few dozen bytes each, for every job ever retired.)
  std::unordered_map<std::string, core::JobId> retired_names_;
  std::unordered_set<core::JobId> retired_ids_;
  /// Takes job `id` named `name` out of memory's reach, keeping both taken.
  void retire(core::JobId id, const std::string& name);
  std::unordered_map<core::JobId, std::string> push_token_hashes_;  ///< SHA-256 hex, by job
  bool queue_loaded_ = false;
  bool last_reload_successful_ = false;
  bool closed_ = false;
};

}  // namespace vapor::app
