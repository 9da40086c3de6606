#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/eta_estimator.hpp"
#include "core/job_events.hpp"
#include "core/job_spec.hpp"
#include "core/job_state.hpp"
#include "runtime/clock.hpp"
#include "support/result.hpp"

namespace vapor::runtime {

struct SchedulerOptions {
  std::size_t max_concurrent = 4;
  std::chrono::milliseconds stall_timeout{60'000};
  std::size_t max_jobs = 10'000;
  /// Steps (and checks) taken per `advance()` at most, so that a backlog (more steps due than
  /// the CPU can take) never holds the event loop: the driver re-arms at once and signals and
  /// sockets are served between batches.
  std::size_t max_steps_per_advance = 4096;
};

/// A job as the scheduler holds it; read-only to everyone else.
struct Job {
  core::JobId id = 0;
  core::JobSpec spec;
  core::JobState state = core::JobState::queued;
  std::string reason;
  std::uint64_t step = 0;  ///< last step taken (0: none)
  double loss = 0.0;
  double accuracy = 0.0;
  bool start_requested = false;  ///< a manual job a user has started
  core::WallTime created_at;
  std::optional<core::WallTime> started_at;
  std::optional<core::WallTime> finished_at;
  core::EtaEstimator eta;
  SteadyTime last_progress{};                ///< when the job last started or stepped
  std::optional<double> reported_progress;   ///< a real job without a plan: its last point's
  std::uint64_t attempt_step = 0;            ///< a real job: its last step in this attempt
  std::optional<int> exit_code;              ///< a command job that exited (non-zero: failed)
  std::string exit_signal;                   ///< a command job killed by a signal: its name
  std::uint32_t attempt = 1;                 ///< a command job: its current or next run
  core::Scalars scalars;  ///< a real job: each named scalar's latest value, first-seen order
  std::optional<SteadyTime> next_step_at;    ///< empty while hung by a stall fault
  std::uint64_t wake_generation = 0;  ///< invalidates older wake-ups in the timer heap

  [[nodiscard]] double progress() const;
  [[nodiscard]] std::optional<double> eta_seconds() const;
};

/// How a real job's process ended, for `finish`.
struct ExternalEnd {
  core::JobState to = core::JobState::complete;  ///< complete or failed
  std::string reason;                            ///< `exit_code`, `signal`, ...
  std::optional<int> exit_code;
  std::string signal;
};

/// What to restore at start-up: a job as the store last committed it.
struct RestoredJob {
  core::JobId id = 0;
  core::JobSpec spec;
  core::JobState state = core::JobState::queued;
  std::string reason;
  std::uint64_t step = 0;
  double loss = 0.0;
  double accuracy = 0.0;
  core::WallTime created_at;
  std::optional<core::WallTime> started_at;
  std::optional<core::WallTime> finished_at;
  std::uint32_t attempt = 1;  ///< a command job: the run about to start (VAPOR_ATTEMPT)
  core::Scalars scalars;      ///< a real job: each named scalar's latest stored value
  bool start_requested = false;  ///< a manual job a user started before the restart
};

/// Runs simulated jobs against a clock: grants slots by priority up to `max_concurrent`, takes
/// each job's steps when they fall due, injects its faults, watches for stalls and emits
/// StepRecorded / JobStateChanged to its listeners. It owns no timer and does no I/O: a driver
/// calls `advance()` at `next_deadline()`; tests do the same with a ManualClock.
/// Not thread-safe: one thread (the event loop) calls everything, and listeners are called on it.
class Scheduler {
 public:
  Scheduler(SchedulerOptions options, const Clock& clock);

  /// Listeners are called in the order they were added; they must outlive the scheduler.
  void add_listener(core::JobEventListener& listener);

  /// Holds back slot assignment while several jobs are added or restored, so that priorities
  /// (not file order) decide who starts; slots are assigned once when the last hold ends.
  class DispatchHold {
   public:
    explicit DispatchHold(Scheduler& scheduler) : scheduler_(&scheduler) { ++scheduler.holds_; }
    DispatchHold(const DispatchHold&) = delete;
    DispatchHold& operator=(const DispatchHold&) = delete;
    ~DispatchHold() {
      if (--scheduler_->holds_ == 0) scheduler_->dispatch();
    }

   private:
    Scheduler* scheduler_;
  };
  [[nodiscard]] DispatchHold hold_dispatch() { return DispatchHold(*this); }

  /// Adds a new queued job. Fails if the name or id is taken or the job limit is reached.
  Result<void> add_job(core::JobId id, core::JobSpec spec, core::WallTime created_at);

  /// Puts back a job from the store. A running job resumes after its last committed step.
  Result<void> restore_job(RestoredJob job);

  /// A user's start: a queued job becomes eligible for a slot (manual jobs need this).
  Result<void> start(core::JobId id);
  /// A user's stop: a queued or running job becomes `stopped`.
  Result<void> stop(core::JobId id);

  /// A point of a running real job (not simulated); a queued push job starts running with its
  /// first point. Its step must come after the last one of this attempt; a non-finite loss
  /// follows the job's `on_nonfinite`; the stall clock restarts.
  Result<void> record_point(core::JobId id, const core::ReportedPoint& point);
  /// A running real job ended on its own (its process exited). Nothing for a job that is no
  /// longer running (a stop or a stall ended it first).
  void finish(core::JobId id, const ExternalEnd& end);

  /// Forgets a finished job (complete, failed or stopped) to make room under max_jobs: it
  /// leaves `jobs()`, and keeping its name and id taken is the caller's part. False when the
  /// job is unknown or has not finished.
  bool forget(core::JobId id);

  /// Takes the steps and checks due by now, at most `max_steps_per_advance` of them; when more
  /// are due, `next_deadline()` is already past and the caller simply calls again.
  void advance();
  /// When `advance()` next has work to do; nothing when no job is running.
  [[nodiscard]] std::optional<SteadyTime> next_deadline();

  /// While paused (the store cannot keep up), no job steps and none is declared stalled.
  void set_paused(bool paused);
  [[nodiscard]] bool paused() const { return paused_; }

  [[nodiscard]] const Job* find(core::JobId id) const;
  [[nodiscard]] const Job* find(std::string_view name) const;
  [[nodiscard]] const std::map<core::JobId, Job>& jobs() const { return jobs_; }
  [[nodiscard]] std::size_t running_count() const { return running_; }
  /// Wake-ups in the timer heap, stale ones included (bounded: about one per running job).
  [[nodiscard]] std::size_t pending_wakes() const { return wakes_.size(); }
  [[nodiscard]] core::JobId max_id() const;

 private:
  struct Wake {
    SteadyTime at;
    core::JobId id;
    std::uint64_t generation;
    bool operator>(const Wake& other) const {
      return at != other.at ? at > other.at : id > other.id;
    }
  };
  /// Orders queued jobs: higher priority first, then older (smaller id) first.
  struct QueueKey {
    std::int64_t priority;
    core::JobId id;
    bool operator<(const QueueKey& other) const {
      return priority != other.priority ? priority > other.priority : id < other.id;
    }
  };

  Result<Job*> find_mutable(core::JobId id);
  void insert(Job job);
  void dispatch();
  void begin_running(Job& job);
  void take_step(Job& job, SteadyTime due, SteadyTime now, core::WallTime wall_now);
  void transition(Job& job, core::JobEvent event, std::string_view reason);
  void schedule_wake(Job& job, SteadyTime at);
  [[nodiscard]] SteadyTime stall_deadline(const Job& job) const;
  [[nodiscard]] bool eligible(const Job& job) const;

  SchedulerOptions options_;
  const Clock& clock_;
  std::vector<core::JobEventListener*> listeners_;
  std::map<core::JobId, Job> jobs_;
  std::unordered_map<std::string, core::JobId> ids_by_name_;
  std::set<QueueKey> ready_;  ///< queued jobs eligible for a slot
  std::priority_queue<Wake, std::vector<Wake>, std::greater<>> wakes_;
  std::size_t running_ = 0;
  int holds_ = 0;
  bool paused_ = false;
};

}  // namespace vapor::runtime
