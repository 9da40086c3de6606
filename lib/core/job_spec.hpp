#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vapor::core {

/// How a job leaves the queue: on its own when a slot frees up, or only when a user starts it.
enum class StartMode { automatic, manual };

/// What a job does when the simulated loss is NaN or infinite.
enum class NonFinitePolicy {
  fail,    ///< the job fails with reason `nonfinite_loss` (default)
  record,  ///< the point is recorded (as NaN) and training goes on
};

/// Shape of the simulated training curves.
struct SimulationParams {
  double initial_loss = 2.5;
  double final_loss = 0.05;  ///< the floor the loss decays toward
  double noise = 0.05;       ///< multiplicative noise: standard deviation of log(loss)
  double initial_accuracy = 0.1;
  double final_accuracy = 0.95;  ///< the ceiling accuracy rises toward
  /// Decay constant over the whole run at the reference learning rate (1e-3); scaled by
  /// sqrt(learning_rate / 1e-3), so a higher learning rate decays faster.
  double decay = 5.0;

  bool operator==(const SimulationParams&) const = default;
};

/// Slow every step from `at_step` on by `factor` (2.0 = twice the step interval).
struct Slowdown {
  std::uint64_t at_step = 0;
  double factor = 1.0;

  bool operator==(const Slowdown&) const = default;
};

/// Faults injected into a simulated run; all optional, all keyed by the global step (1-based).
struct Faults {
  std::optional<std::uint64_t> fail_at_step;  ///< the job crashes instead of recording this step
  double fail_probability = 0.0;              ///< per-step crash chance, deterministic per seed
  std::optional<std::uint64_t> nan_at_step;   ///< this step's loss is NaN
  std::optional<std::uint64_t> stall_at_step; ///< the job stops stepping before this step
  std::optional<Slowdown> slowdown;

  bool operator==(const Faults&) const = default;
};

/// Where a job's points come from (DESIGN.md, "Job kinds").
enum class JobKind {
  simulated,  ///< the deterministic simulator (default)
  command,    ///< a trainer process vapord starts, reporting on VAPOR_METRICS_FD
  push,       ///< a trainer elsewhere that posts its points to the API
};

/// What happens to a command job that was running when vapord stopped without ending it.
enum class OnDaemonRestart { fail, requeue };

/// A command job's process (queue file only).
struct CommandSpec {
  std::vector<std::string> argv;  ///< no shell; argv[0] is looked up on PATH
  std::string cwd;                ///< absolute (resolved against the queue file's folder)
  std::vector<std::pair<std::string, std::string>> env;  ///< added to vapord's environment
  std::chrono::milliseconds stop_grace{10'000};  ///< SIGTERM to the group, SIGKILL after this
  OnDaemonRestart on_daemon_restart = OnDaemonRestart::fail;

  bool operator==(const CommandSpec&) const = default;
};

/// Everything that defines one training job. Plain data; copied freely.
struct JobSpec {
  std::string name;
  std::string model = "mlp";
  std::uint64_t epochs = 1;
  std::uint64_t steps_per_epoch = 100;
  double learning_rate = 1e-3;
  std::uint64_t batch_size = 32;
  std::uint64_t seed = 0;  ///< derived from the name when not given (see seed_from_name)
  std::chrono::milliseconds step_interval{1500};
  StartMode start = StartMode::automatic;
  std::int64_t priority = 0;  ///< higher starts first; ties go to the older job
  NonFinitePolicy on_nonfinite = NonFinitePolicy::fail;
  SimulationParams simulate;
  Faults faults;
  JobKind kind = JobKind::simulated;
  CommandSpec command;  ///< kind == command only
  /// How long the job may go without a point before it fails `stalled` (empty: the daemon's
  /// scheduler.stall_timeout).
  std::optional<std::chrono::milliseconds> stall_timeout;

  /// The planned steps; 0 for a real job that plans none (its points say their progress).
  [[nodiscard]] std::uint64_t total_steps() const { return epochs * steps_per_epoch; }
  bool operator==(const JobSpec&) const = default;
};

/// A stable 64-bit seed from a job name (FNV-1a), so a job without `seed` is still reproducible.
[[nodiscard]] std::uint64_t seed_from_name(std::string_view name);

/// True when `name` matches `[A-Za-z0-9._-]{1,64}`.
[[nodiscard]] bool is_valid_job_name(std::string_view name);

}  // namespace vapor::core
