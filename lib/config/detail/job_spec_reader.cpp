#include "config/detail/job_spec_reader.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>

#include "config/detail/scalar_text.hpp"

namespace vapor::config::detail {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view job_keys[] = {
    "name",          "model", "epochs",   "steps_per_epoch", "learning_rate", "batch_size", "seed",
    "step_interval", "start", "priority", "on_nonfinite",    "simulate",      "faults",
    "kind",          "command", "cwd",    "env",             "stop_grace",    "on_daemon_restart",
    "stall_timeout"};
constexpr Choice<core::JobKind> kind_choices[] = {{"simulated", core::JobKind::simulated},
                                                  {"command", core::JobKind::command},
                                                  {"push", core::JobKind::push}};
constexpr Choice<core::OnDaemonRestart> restart_choices[] = {
    {"fail", core::OnDaemonRestart::fail}, {"requeue", core::OnDaemonRestart::requeue}};
constexpr DurationRange stop_grace_range{0ms, 1h};
constexpr DurationRange stall_timeout_range{1ms, std::chrono::hours(24 * 7)};
constexpr std::size_t max_command_arguments = 4096;
constexpr std::string_view simulate_keys[] = {"initial_loss",     "final_loss",     "noise",
                                              "initial_accuracy", "final_accuracy", "decay"};
constexpr std::string_view fault_keys[] = {"fail_at_step", "fail_probability", "nan_at_step",
                                           "stall_at_step", "slowdown"};
constexpr std::string_view slowdown_keys[] = {"at_step", "factor"};

constexpr Choice<core::StartMode> start_choices[] = {{"auto", core::StartMode::automatic},
                                                     {"manual", core::StartMode::manual}};
constexpr Choice<core::NonFinitePolicy> nonfinite_choices[] = {
    {"fail", core::NonFinitePolicy::fail}, {"record", core::NonFinitePolicy::record}};

constexpr DurationRange step_interval_range{1ms, 1h};
constexpr NumberRange slowdown_factor_range{0.0, 1000.0, true, false};
constexpr std::size_t max_model_length = 128;

IntegerRange positive_integers() { return {1, std::numeric_limits<std::uint64_t>::max(), ""}; }
IntegerRange any_unsigned_integer() { return {0, std::numeric_limits<std::uint64_t>::max(), ""}; }

bool is_valid_model_name(std::string_view model) {
  if (model.empty() || model.size() > max_model_length) return false;
  return std::none_of(model.begin(), model.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7F;
  });
}

template <class T>
void assign(const std::optional<T>& value, T& out) {
  if (value) out = *value;
}

template <class T>
void assign(const std::optional<T>& value, std::optional<T>& out) {
  if (value) out = value;
}

/// Reads one job spec; keeps what it learnt (total steps, which values are valid) for the checks
/// that span several keys.
class JobSpecReader {
 public:
  JobSpecReader(NodeValidator& validator, const SpecDefaults& defaults)
      : validator_(validator),
        base_dir_(defaults.base_dir),
        allow_numeric_names_(defaults.allow_numeric_names) {
    result_.spec.step_interval = defaults.step_interval;
  }

  JobSpecRead read(const Field& field) {
    const std::optional<MapFields> fields =
        validator_.read_map(field, job_keys, "a job spec (a map of job keys)");
    if (!fields) return result_;
    validator_.require(*fields, "name");
    read_kind(*fields);
    const bool simulated = result_.spec.kind == core::JobKind::simulated;
    if (simulated) {
      validator_.require(*fields, "epochs");
    } else if (!fields->find("epochs") && !fields->find("steps_per_epoch")) {
      // A real job may plan no steps: its points then say their progress.
      result_.spec.epochs = 0;
      result_.spec.steps_per_epoch = 0;
    }
    read_identity(*fields);
    read_steps(*fields);
    read_training(*fields);
    read_scheduling(*fields);
    if (const Field* simulate = fields->find("simulate")) read_simulation(*simulate);
    if (const Field* faults = fields->find("faults")) read_faults(*faults);
    return result_;
  }

 private:
  void read_identity(const MapFields& fields) {
    if (const Field* name = fields.find("name")) read_name(*name);
    if (const Field* model = fields.find("model")) {
      const std::optional<std::string> text = validator_.read_text(*model);
      if (text && is_valid_model_name(*text)) {
        result_.spec.model = *text;
      } else if (text) {
        validator_.report_expected(*model, "a model name of 1 to " +
                                               std::to_string(max_model_length) +
                                               " characters, without control characters");
      }
    }
  }

  void read_kind(const MapFields& fields) {
    core::JobSpec& spec = result_.spec;
    if (const Field* kind = fields.find("kind")) {
      assign(validator_.read_choice<core::JobKind>(*kind, kind_choices), spec.kind);
    }
    const bool command = spec.kind == core::JobKind::command;
    for (const std::string_view key : {"command", "cwd", "env", "stop_grace", "on_daemon_restart"}) {
      if (const Field* field = fields.find(key); field && !command) {
        validator_.report_at_key(*field, std::string(key) + " is for command jobs (kind: command)");
      }
    }
    for (const std::string_view key : {"simulate", "faults"}) {
      if (const Field* field = fields.find(key); field && spec.kind != core::JobKind::simulated) {
        validator_.report_at_key(*field, std::string(key) + " is for simulated jobs");
      }
    }
    if (const Field* stall = fields.find("stall_timeout")) {
      assign(validator_.read_duration(*stall, stall_timeout_range), spec.stall_timeout);
    }
    if (!command) return;
    if (validator_.require(fields, "command")) read_argv(*fields.find("command"));
    read_cwd(fields.find("cwd"));
    if (const Field* env = fields.find("env")) read_env(*env);
    if (const Field* grace = fields.find("stop_grace")) {
      assign(validator_.read_duration(*grace, stop_grace_range), spec.command.stop_grace);
    }
    if (const Field* restart = fields.find("on_daemon_restart")) {
      assign(validator_.read_choice<core::OnDaemonRestart>(*restart, restart_choices),
             spec.command.on_daemon_restart);
    }
  }

  void read_argv(const Field& field) {
    const auto items = validator_.read_list(field, "a command as a list of arguments");
    if (!items) return;
    if (items->empty() || items->size() > max_command_arguments) {
      validator_.report_expected(field, "a list of 1 to " + std::to_string(max_command_arguments) +
                                            " arguments (the program first)");
      return;
    }
    std::vector<std::string> argv;
    for (const Field& item : *items) {
      auto text = validator_.read_text(item);
      if (!text) return;
      if (text->find('\0') != std::string::npos || (argv.empty() && text->empty())) {
        validator_.report_expected(item, "a program name or argument without NUL characters");
        return;
      }
      argv.push_back(std::move(*text));
    }
    result_.spec.command.argv = std::move(argv);
  }

  void read_cwd(const Field* field) {
    std::filesystem::path cwd = base_dir_;
    if (field != nullptr) {
      const auto text = validator_.read_text(*field);
      if (!text || text->empty()) {
        if (text) validator_.report_expected(*field, "a folder");
        return;
      }
      cwd = base_dir_ / *text;  // an absolute cwd replaces the base
    }
    result_.spec.command.cwd = cwd.empty() ? std::string() : cwd.lexically_normal().string();
  }

  void read_env(const Field& field) {
    if (!field.value.IsMap()) {
      validator_.report_expected(field, "a map of environment variables to values");
      return;
    }
    for (const auto& entry : field.value) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      const bool valid_name =
          !name.empty() && name.find('=') == std::string::npos &&
          name.find('\0') == std::string::npos && !name.starts_with("VAPOR_");
      const Field value{entry.second, entry.first.Mark(), field.path + "." + name};
      if (!valid_name) {
        validator_.report_at_key(value, "\"" + name + "\" is not an environment variable vapord "
                                        "can set (no '=', and VAPOR_* are vapord's own)");
        continue;
      }
      auto text = validator_.read_text(value);
      if (text) result_.spec.command.env.emplace_back(name, std::move(*text));
    }
  }

  void read_name(const Field& name) {
    const std::optional<std::string> text = validator_.read_text(name);
    if (!text) return;
    if (!core::is_valid_job_name(*text)) {
      validator_.report_expected(
          name, "a job name of 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'");
      return;
    }
    if (!allow_numeric_names_ &&
        text->find_first_not_of("0123456789") == std::string::npos) {
      validator_.report_expected(name, "a job name with a character other than a digit (an "
                                       "all-digit name would be read as a job id)");
      return;
    }
    result_.spec.name = *text;
    result_.name = name;
  }

  void read_steps(const MapFields& fields) {
    const IntegerRange range{1, max_total_steps, ""};
    const Field* epochs = fields.find("epochs");
    const Field* steps_per_epoch = fields.find("steps_per_epoch");
    const auto epochs_value = epochs ? validator_.read_unsigned(*epochs, range) : std::nullopt;
    const auto steps_value =
        steps_per_epoch ? validator_.read_unsigned(*steps_per_epoch, range) : std::nullopt;
    assign(epochs_value, result_.spec.epochs);
    assign(steps_value, result_.spec.steps_per_epoch);
    if (!epochs_value || (steps_per_epoch && !steps_value)) return;
    // Both are at most max_total_steps, so the product cannot overflow.
    const std::uint64_t total = result_.spec.total_steps();
    if (total > max_total_steps) {
      validator_.report(*epochs, "epochs * steps_per_epoch is " + std::to_string(total) +
                                     " steps, more than the limit of " +
                                     std::to_string(max_total_steps));
      return;
    }
    total_steps_ = total;
  }

  void read_training(const MapFields& fields) {
    if (const Field* rate = fields.find("learning_rate")) {
      assign(validator_.read_number(*rate, positive_number), result_.spec.learning_rate);
    }
    if (const Field* batch = fields.find("batch_size")) {
      assign(validator_.read_unsigned(*batch, positive_integers()), result_.spec.batch_size);
    }
    if (const Field* seed = fields.find("seed")) {
      assign(validator_.read_unsigned(*seed, any_unsigned_integer()), result_.spec.seed);
    } else if (result_.name) {
      result_.spec.seed = core::seed_from_name(result_.spec.name);
    }
  }

  void read_scheduling(const MapFields& fields) {
    core::JobSpec& spec = result_.spec;
    if (const Field* interval = fields.find("step_interval")) {
      assign(validator_.read_duration(*interval, step_interval_range), spec.step_interval);
    }
    if (const Field* start = fields.find("start")) {
      assign(validator_.read_choice<core::StartMode>(*start, start_choices), spec.start);
    }
    if (const Field* priority = fields.find("priority")) {
      assign(validator_.read_signed(*priority), spec.priority);
    }
    if (const Field* policy = fields.find("on_nonfinite")) {
      assign(validator_.read_choice<core::NonFinitePolicy>(*policy, nonfinite_choices),
             spec.on_nonfinite);
    }
  }

  void read_simulation(const Field& field) {
    const std::optional<MapFields> fields = validator_.read_map(field, simulate_keys);
    if (!fields) return;
    core::SimulationParams& simulate = result_.spec.simulate;
    const bool initial_valid =
        read_number(*fields, "initial_loss", positive_number, simulate.initial_loss);
    const bool final_valid =
        read_number(*fields, "final_loss", positive_number, simulate.final_loss);
    read_number(*fields, "noise", unit_interval, simulate.noise);
    read_number(*fields, "initial_accuracy", unit_interval, simulate.initial_accuracy);
    read_number(*fields, "final_accuracy", unit_interval, simulate.final_accuracy);
    read_number(*fields, "decay", positive_number, simulate.decay);
    if (initial_valid && final_valid) check_loss_order(*fields);
  }

  /// The loss decays toward its floor, so the floor must be below the start.
  void check_loss_order(const MapFields& fields) {
    const core::SimulationParams& simulate = result_.spec.simulate;
    if (simulate.final_loss < simulate.initial_loss) return;
    if (const Field* final_loss = fields.find("final_loss")) {
      validator_.report_expected(*final_loss, "a number less than initial_loss (" +
                                                  format_real_number(simulate.initial_loss) + ")");
    } else if (const Field* initial_loss = fields.find("initial_loss")) {
      validator_.report_expected(*initial_loss, "a number greater than final_loss (" +
                                                    format_real_number(simulate.final_loss) + ")");
    }
  }

  void read_faults(const Field& field) {
    const std::optional<MapFields> fields = validator_.read_map(field, fault_keys);
    if (!fields) return;
    core::Faults& faults = result_.spec.faults;
    if (const Field* step = fields->find("fail_at_step")) {
      assign(read_step(*step), faults.fail_at_step);
    }
    if (const Field* step = fields->find("nan_at_step")) {
      assign(read_step(*step), faults.nan_at_step);
    }
    if (const Field* step = fields->find("stall_at_step")) {
      assign(read_step(*step), faults.stall_at_step);
    }
    read_number(*fields, "fail_probability", unit_interval, faults.fail_probability);
    if (const Field* slowdown = fields->find("slowdown")) read_slowdown(*slowdown);
  }

  void read_slowdown(const Field& field) {
    const std::optional<MapFields> fields = validator_.read_map(field, slowdown_keys);
    if (!fields) return;
    const bool has_at_step = validator_.require(*fields, "at_step");
    const bool has_factor = validator_.require(*fields, "factor");
    const std::optional<std::uint64_t> at_step =
        has_at_step ? read_step(*fields->find("at_step")) : std::nullopt;
    core::Slowdown slowdown;
    const bool factor_valid =
        read_number(*fields, "factor", slowdown_factor_range, slowdown.factor);
    if (at_step && has_factor && factor_valid) {
      slowdown.at_step = *at_step;
      result_.spec.faults.slowdown = slowdown;
    }
  }

  /// A global step (1-based) that the run reaches.
  std::optional<std::uint64_t> read_step(const Field& field) {
    if (!total_steps_) {
      return validator_.read_unsigned(field, IntegerRange{1, max_total_steps, ""});
    }
    const std::string description =
        "a step from 1 to " + std::to_string(*total_steps_) + " (epochs * steps_per_epoch)";
    return validator_.read_unsigned(field, IntegerRange{1, *total_steps_, description});
  }

  /// Reads `key` into `out` when present; false when present but invalid.
  bool read_number(const MapFields& fields, std::string_view key, const NumberRange& range,
                   double& out) {
    const Field* field = fields.find(key);
    if (field == nullptr) return true;
    const std::optional<double> value = validator_.read_number(*field, range);
    assign(value, out);
    return value.has_value();
  }

  NodeValidator& validator_;
  std::filesystem::path base_dir_;
  bool allow_numeric_names_ = false;
  JobSpecRead result_;
  std::optional<std::uint64_t> total_steps_;  ///< known once epochs and steps_per_epoch are valid
};

}  // namespace

JobSpecRead read_job_spec(NodeValidator& validator, const Field& field,
                          const SpecDefaults& defaults) {
  return JobSpecReader(validator, defaults).read(field);
}

}  // namespace vapor::config::detail
