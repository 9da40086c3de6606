#include "http/json_codec.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include <boost/json/parse.hpp>

#include "config/queue_file.hpp"
#include "core/simulator.hpp"
#include "runtime/scheduler.hpp"
#include "store/job_history.hpp"

namespace vapor::http {
namespace {

boost::json::value time_or_null(const std::optional<core::WallTime>& time) {
  if (!time) return nullptr;
  return boost::json::value(rfc3339(*time));
}

boost::json::value text_or_null(std::string_view text) {
  if (text.empty()) return nullptr;
  return boost::json::value(text);
}

boost::json::string_view state_name(core::JobState state) {
  const std::string_view name = core::to_string(state);
  return {name.data(), name.size()};
}

}  // namespace

std::string rfc3339(core::WallTime time) {
  using namespace std::chrono;
  const auto millis = floor<milliseconds>(time);
  const auto day = floor<days>(millis);
  const year_month_day date{day};
  const hh_mm_ss clock{millis - day};
  char text[40];
  const int written = std::snprintf(
      text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
      static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
      static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
      static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return std::string(text, static_cast<std::size_t>(std::clamp(written, 0, 39)));
}

void put_number(boost::json::object& object, std::string_view key, double value) {
  if (std::isfinite(value)) {
    object[key] = value;
    return;
  }
  object[key] = nullptr;
  std::string flag(key);
  flag += "_nonfinite";
  object[flag] = std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
}

void put_scalars(boost::json::object& object, const core::Scalars& scalars) {
  if (scalars.empty()) return;
  boost::json::object values;
  boost::json::object nonfinite;
  for (const core::NamedScalar& scalar : scalars) {
    if (std::isfinite(scalar.value)) {
      values[scalar.name] = scalar.value;
    } else {
      values[scalar.name] = nullptr;
      nonfinite[scalar.name] =
          std::isnan(scalar.value) ? "nan" : (scalar.value > 0 ? "inf" : "-inf");
    }
  }
  object["scalars"] = std::move(values);
  if (!nonfinite.empty()) object["scalars_nonfinite"] = std::move(nonfinite);
}

boost::json::object job_summary(const runtime::Job& job) {
  const core::JobSpec& spec = job.spec;
  boost::json::object out;
  out["id"] = job.id;
  out["name"] = spec.name;
  out["model"] = spec.model;
  out["state"] = state_name(job.state);
  out["reason"] = text_or_null(job.reason);
  out["epoch"] = core::epoch_of_step(spec, job.step);
  out["epochs"] = spec.epochs;
  out["step"] = job.step;
  out["steps"] = spec.total_steps();
  const double progress = job.progress();
  out["progress"] = std::isfinite(progress) ? std::clamp(progress, 0.0, 1.0) : 0.0;
  // Before the first step there is no loss or accuracy yet (not a zero one).
  if (job.step == 0) {
    out["loss"] = nullptr;
    out["accuracy"] = nullptr;
  } else {
    put_number(out, "loss", job.loss);
    put_number(out, "accuracy", job.accuracy);
  }
  if (const auto eta = job.eta_seconds()) {
    put_number(out, "eta_seconds", *eta);
  } else {
    out["eta_seconds"] = nullptr;
  }
  out["created_at"] = rfc3339(job.created_at);
  out["started_at"] = time_or_null(job.started_at);
  out["finished_at"] = time_or_null(job.finished_at);
  if (spec.kind == core::JobKind::push) out["kind"] = "push";
  if (spec.kind == core::JobKind::command) {
    out["kind"] = "command";
    out["attempt"] = job.attempt;
    if (job.exit_code) out["exit_code"] = *job.exit_code;
    if (!job.exit_signal.empty()) out["signal"] = job.exit_signal;
  }
  put_scalars(out, job.scalars);
  return out;
}

boost::json::object job_detail(const runtime::Job& job) {
  boost::json::object out = job_summary(job);
  boost::system::error_code error;
  boost::json::value spec = boost::json::parse(config::job_spec_to_json(job.spec), error);
  out["spec"] = error ? boost::json::value(nullptr) : std::move(spec);
  return out;
}

boost::json::object point_json(const store::StoredPoint& point) {
  boost::json::object out;
  out["step"] = point.step;
  out["epoch"] = point.epoch;
  put_number(out, "loss", point.loss);
  put_number(out, "accuracy", point.accuracy);
  out["ts"] = rfc3339(point.ts);
  put_scalars(out, point.scalars);
  return out;
}

boost::json::object transition_json(const store::StoredTransition& transition) {
  boost::json::object out;
  out["from"] = state_name(transition.from);
  out["to"] = state_name(transition.to);
  out["reason"] = text_or_null(transition.reason);
  out["ts"] = rfc3339(transition.ts);
  if (transition.step) out["step"] = *transition.step;
  return out;
}

boost::json::object point_message(const core::StepRecorded& event) {
  boost::json::object out;
  out["type"] = "point";
  out["job_id"] = event.job_id;
  out["step"] = event.step;
  out["epoch"] = event.epoch;
  put_number(out, "loss", event.loss);
  put_number(out, "accuracy", event.accuracy);
  put_number(out, "progress", event.progress);
  if (event.eta_seconds) {
    put_number(out, "eta_seconds", *event.eta_seconds);
  } else {
    out["eta_seconds"] = nullptr;
  }
  out["ts"] = rfc3339(event.ts);
  put_scalars(out, event.scalars);
  return out;
}

boost::json::object state_message(const core::JobStateChanged& event) {
  boost::json::object out;
  out["type"] = "state";
  out["job_id"] = event.job_id;
  out["from"] = state_name(event.from);
  out["to"] = state_name(event.to);
  out["reason"] = text_or_null(event.reason);
  out["ts"] = rfc3339(event.ts);
  return out;
}

}  // namespace vapor::http
