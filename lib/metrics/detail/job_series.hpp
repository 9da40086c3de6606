#pragma once

// The per-job half of /metrics: up to 18 series per job, and a real job's named scalars, kept as
// plain values in one struct per job, each job's label text rendered once, written straight into
// the exposition text (see vapor_metrics.cpp for why not prometheus-cpp families).

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/job_events.hpp"
#include "core/job_state.hpp"

namespace vapor::metrics::detail {

/// Unix time in seconds, whole seconds and fraction converted apart (exact to the millisecond).
[[nodiscard]] double unix_seconds(core::WallTime time);
/// A number as the text format spells it (NaN, +Inf, plain decimals where they read back).
[[nodiscard]] std::string value_text(double value);
/// Appends `value` with the text format's label-value escapes (backslash, quote, newline).
void append_escaped(std::string& out, std::string_view value);
/// Appends `name="value"` (escaped) to a comma-separated label list.
void append_label(std::string& out, std::string_view name, std::string_view value);
/// A failed job always names a reason; an empty label value would read as "no label" in PromQL.
[[nodiscard]] std::string_view reason_or_unknown(std::string_view reason);

/// The per-job series of one job: values as of the latest event, and its label text.
struct JobSeries {
  std::string labels;       ///< `job_id="7",job_name="resnet"`, escaped, rendered once
  std::string info_labels;  ///< labels plus model, batch_size, learning_rate
  std::string failure_reason;
  core::JobState state = core::JobState::queued;
  std::optional<core::WallTime> finished_at;

  double epochs_planned = 0;
  double steps_planned = 0;
  double epoch = 0;
  double step = 0;
  double progress = 0;
  bool has_step = false;  ///< loss, accuracy and last_progress exist after the first step
  double loss = 0;
  double accuracy = 0;
  core::Scalars scalars;  ///< a real job's named scalars, each name's latest value
  double last_progress = 0;
  std::optional<double> start;
  bool has_eta = false;  ///< only while running with a known ETA
  double eta = 0;
  double expected_completion = 0;
};

using JobTable = std::map<core::JobId, JobSeries>;  // ordered: /metrics lists jobs by id

/// Writes every per-job family of `jobs` (in job id order) into `out`.
void render_jobs(std::string& out, const JobTable& jobs);

}  // namespace vapor::metrics::detail
