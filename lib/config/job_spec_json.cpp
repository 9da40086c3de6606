#include <boost/json.hpp>

#include "config/detail/scalar_text.hpp"
#include "config/queue_file.hpp"

namespace vapor::config {
namespace {

boost::json::object simulation_to_json(const core::SimulationParams& simulate) {
  return boost::json::object{
      {"initial_loss", simulate.initial_loss},
      {"final_loss", simulate.final_loss},
      {"noise", simulate.noise},
      {"initial_accuracy", simulate.initial_accuracy},
      {"final_accuracy", simulate.final_accuracy},
      {"decay", simulate.decay},
  };
}

/// Only the faults that are set, so an empty object means "no faults".
boost::json::object faults_to_json(const core::Faults& faults) {
  boost::json::object out;
  if (faults.fail_at_step) out["fail_at_step"] = *faults.fail_at_step;
  if (faults.fail_probability != 0.0) out["fail_probability"] = faults.fail_probability;
  if (faults.nan_at_step) out["nan_at_step"] = *faults.nan_at_step;
  if (faults.stall_at_step) out["stall_at_step"] = *faults.stall_at_step;
  if (faults.slowdown) {
    out["slowdown"] = boost::json::object{{"at_step", faults.slowdown->at_step},
                                          {"factor", faults.slowdown->factor}};
  }
  return out;
}

}  // namespace

std::string job_spec_to_json(const core::JobSpec& spec) {
  // Boost.JSON writes doubles in their shortest exact form and uint64 as is, so the text reads
  // back to the same values.
  boost::json::object out{
      {"name", spec.name},
      {"model", spec.model},
      {"epochs", spec.epochs},
      {"steps_per_epoch", spec.steps_per_epoch},
      {"learning_rate", spec.learning_rate},
      {"batch_size", spec.batch_size},
      {"seed", spec.seed},
      {"step_interval", detail::format_duration(spec.step_interval)},
      {"start", spec.start == core::StartMode::manual ? "manual" : "auto"},
      {"priority", spec.priority},
      {"on_nonfinite", spec.on_nonfinite == core::NonFinitePolicy::record ? "record" : "fail"},
  };
  if (spec.stall_timeout) out["stall_timeout"] = detail::format_duration(*spec.stall_timeout);
  if (spec.kind == core::JobKind::simulated) {
    out["simulate"] = simulation_to_json(spec.simulate);
    out["faults"] = faults_to_json(spec.faults);
    return boost::json::serialize(out);
  }
  out["kind"] = spec.kind == core::JobKind::push ? "push" : "command";
  if (spec.total_steps() == 0) {  // no plan: its points say their progress
    out.erase("epochs");
    out.erase("steps_per_epoch");
  }
  if (spec.kind == core::JobKind::push) return boost::json::serialize(out);
  boost::json::array argv;
  for (const auto& argument : spec.command.argv) argv.emplace_back(argument);
  out["command"] = std::move(argv);
  if (!spec.command.cwd.empty()) out["cwd"] = spec.command.cwd;
  boost::json::object env;
  for (const auto& [name, value] : spec.command.env) env[name] = value;
  out["env"] = std::move(env);
  out["stop_grace"] = detail::format_duration(spec.command.stop_grace);
  out["on_daemon_restart"] =
      spec.command.on_daemon_restart == core::OnDaemonRestart::requeue ? "requeue" : "fail";
  return boost::json::serialize(out);
}

}  // namespace vapor::config
