#pragma once

// Command jobs: the trainer processes vapord starts. When the scheduler starts a `kind: command`
// job, the runner starts its argv in a process group of its own (stdin /dev/null, stdout and
// stderr to the job's log file, points on the pipe VAPOR_METRICS_FD), reads the points line by
// line into the scheduler, and reports the process's end (exit 0: complete; exit N: failed,
// exit_code; a signal: failed, signal). A job that stops running any other way (a user's stop,
// a stall, a non-finite loss) has its group sent SIGTERM, then SIGKILL after `stop_grace`.
// No trainer outlives vapord: the child dies with it (PR_SET_PDEATHSIG), and `stop_all` ends
// every group at shutdown. All on the event loop: pipes and process exits (pidfd) are watched
// with Asio, nothing blocks.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "core/job_events.hpp"

namespace vapor::runtime {
class Scheduler;
}

namespace vapor::runner {

struct CommandRunnerOptions {
  std::filesystem::path log_dir;          ///< job logs: <log_dir>/job-<id>.log
  std::size_t max_line_bytes = 64 * 1024;  ///< jobs.max_metric_line_bytes
  std::uint64_t log_max_bytes = 8 * 1024 * 1024;  ///< jobs.log_max_bytes: the newest kept
};

/// What the runner tells its owner.
struct CommandRunnerHooks {
  std::function<void()> rearm;                           ///< the scheduler's deadline moved
  std::function<void(core::JobId)> metric_line_rejected;  ///< for the metrics
};

class CommandRunner final : public core::JobEventListener {
 public:
  CommandRunner(const boost::asio::any_io_executor& executor, runtime::Scheduler& scheduler,
                CommandRunnerOptions options, CommandRunnerHooks hooks);
  /// Kills every process group still running (SIGKILL).
  ~CommandRunner() override;
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  void on_step(const core::StepRecorded&) override {}
  void on_state_changed(const core::JobStateChanged& event) override;

  /// Shutdown: SIGTERM to every group, SIGKILL after its stop_grace; `done` once all have
  /// exited. Their jobs stay `running` in the store, so the next start marks them
  /// `daemon_restart` (or runs them again).
  void stop_all(std::function<void()> done);

  /// The log file of a job (it may not exist).
  [[nodiscard]] std::filesystem::path log_path(core::JobId id) const;

 private:
  struct Process;
  void spawn(core::JobId id);
  void end_group(Process& process);
  void read_metrics(const std::shared_ptr<Process>& process);
  void take_line(Process& process, std::string_view line);
  void reject(Process& process, const std::string& why);
  void on_exit(const std::shared_ptr<Process>& process);
  void maybe_finish(const std::shared_ptr<Process>& process);
  void trim_logs();
  void trim_log(Process& process) const;

  boost::asio::any_io_executor executor_;
  runtime::Scheduler& scheduler_;
  CommandRunnerOptions options_;
  CommandRunnerHooks hooks_;
  std::map<core::JobId, std::shared_ptr<Process>> processes_;
  std::unique_ptr<struct TrimTimer> trim_timer_;
  std::function<void()> all_stopped_;
  bool stopping_ = false;
};

}  // namespace vapor::runner
