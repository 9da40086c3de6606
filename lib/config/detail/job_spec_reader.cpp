#include "config/detail/job_spec_reader.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include "config/detail/scalar_text.hpp"

namespace vapor::config::detail {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view job_keys[] = {
    "name",          "model", "epochs",   "steps_per_epoch", "learning_rate", "batch_size", "seed",
    "step_interval", "start", "priority", "on_nonfinite",    "simulate",      "faults"};
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
  JobSpecReader(NodeValidator& validator, const SpecDefaults& defaults) : validator_(validator) {
    result_.spec.step_interval = defaults.step_interval;
  }

  JobSpecRead read(const Field& field) {
    const std::optional<MapFields> fields =
        validator_.read_map(field, job_keys, "a job spec (a map of job keys)");
    if (!fields) return result_;
    validator_.require(*fields, "name");
    validator_.require(*fields, "epochs");
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

  void read_name(const Field& name) {
    const std::optional<std::string> text = validator_.read_text(name);
    if (!text) return;
    if (!core::is_valid_job_name(*text)) {
      validator_.report_expected(
          name, "a job name of 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'");
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
  JobSpecRead result_;
  std::optional<std::uint64_t> total_steps_;  ///< known once epochs and steps_per_epoch are valid
};

}  // namespace

JobSpecRead read_job_spec(NodeValidator& validator, const Field& field,
                          const SpecDefaults& defaults) {
  return JobSpecReader(validator, defaults).read(field);
}

}  // namespace vapor::config::detail
