#include "metrics/detail/job_series.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>

namespace vapor::metrics::detail {
namespace {

/// A number as the text format spells it: NaN, +Inf, -Inf, or the shortest text that reads back
/// as `value`, in plain decimals ("1800000030.125", "0.0003") unless it is tiny or huge.
void append_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    std::array<char, 64> buffer{};
    const double magnitude = std::fabs(value);
    const bool plain = magnitude == 0.0 || (magnitude >= 1e-6 && magnitude < 1e16);
    const auto result =
        plain ? std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                              std::chars_format::fixed)
              : std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(buffer.data(), result.ptr);
  }
}

/// Writes one per-job family: `name{labels} value` lines under a HELP and TYPE header that is
/// written with the first sample, so a family without series is not listed (as prometheus-cpp).
class FamilyWriter {
 public:
  FamilyWriter(std::string& out, std::string_view name, std::string_view help)
      : out_(out), name_(name), help_(help) {}

  void sample(std::string_view labels, double value) {
    begin(labels);
    close(value);
  }
  /// `extra_value` must need no escaping, or be escaped already.
  void sample(std::string_view labels, std::string_view extra_name, std::string_view extra_value,
              double value) {
    begin(labels);
    out_ += ',';
    out_ += extra_name;
    out_ += "=\"";
    out_ += extra_value;
    out_ += '"';
    close(value);
  }

 private:
  void begin(std::string_view labels) {
    if (!header_written_) {
      out_ += "# HELP ";
      out_ += name_;
      out_ += ' ';
      out_ += help_;
      out_ += "\n# TYPE ";
      out_ += name_;
      out_ += " gauge\n";
      header_written_ = true;
    }
    out_ += name_;
    out_ += '{';
    out_ += labels;
  }
  void close(double value) {
    out_ += "} ";
    append_value(out_, value);
    out_ += '\n';
  }

  std::string& out_;
  std::string_view name_;
  std::string_view help_;
  bool header_written_ = false;
};

/// Calls `write(writer, job)` for each job, in job id order, to write one family.
template <typename Write>
void write_family(std::string& out, const JobTable& jobs, std::string_view name,
                  std::string_view help, Write write) {
  FamilyWriter writer(out, name, help);
  for (const auto& entry : jobs) write(writer, entry.second);
}

}  // namespace

void append_escaped(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

double unix_seconds(core::WallTime time) {
  const auto whole = std::chrono::floor<std::chrono::seconds>(time.time_since_epoch());
  const std::chrono::duration<double> fraction = time.time_since_epoch() - whole;
  return static_cast<double>(whole.count()) + fraction.count();
}

std::string value_text(double value) {
  std::string text;
  append_value(text, value);
  return text;
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += ',';
  out += name;
  out += "=\"";
  append_escaped(out, value);
  out += '"';
}

std::string_view reason_or_unknown(std::string_view reason) {
  return reason.empty() ? std::string_view{"unknown"} : reason;
}

void render_jobs(std::string& out, const JobTable& jobs) {
  write_family(out, jobs, "vapor_job_info",
               "Static description of a job (model, batch size, learning rate); always 1. Join "
               "on job_id to add these labels to other vapor_job_* series.",
               [](FamilyWriter& w, const JobSeries& job) { w.sample(job.info_labels, 1.0); });
  write_family(out, jobs, "vapor_job_state",
               "Lifecycle state of a job: 1 for the current state (queued, running, complete, "
               "failed, stopped), 0 for the others.",
               [](FamilyWriter& w, const JobSeries& job) {
                 for (const core::JobState state : core::all_job_states) {
                   w.sample(job.labels, "state", to_string(state), state == job.state ? 1.0 : 0.0);
                 }
               });
  write_family(out, jobs, "vapor_job_failure_info",
               "Why a failed job failed (crashed, nonfinite_loss, stalled, diverged, "
               "daemon_restart, ...); always 1, present only for failed jobs.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.state == core::JobState::failed) {
                   w.sample(job.labels, "reason", job.failure_reason, 1.0);
                 }
               });
  write_family(out, jobs, "vapor_job_loss",
               "Training loss at the job's latest step; NaN when that loss was not finite. "
               "Absent before the first step.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.has_step) w.sample(job.labels, job.loss);
               });
  write_family(out, jobs, "vapor_job_accuracy_ratio",
               "Training accuracy (0..1) at the job's latest step. Absent before the first step.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.has_step) w.sample(job.labels, job.accuracy);
               });
  write_family(out, jobs, "vapor_job_scalar",
               "A named scalar a real training job reports beside its loss (val_loss, lr, "
               "grad_norm, ...), at the latest step that reported it; NaN or +-Inf as reported.",
               [](FamilyWriter& w, const JobSeries& job) {
                 for (const core::NamedScalar& scalar : job.scalars) {
                   w.sample(job.labels, "name", scalar.name, scalar.value);
                 }
               });
  write_family(out, jobs, "vapor_job_epoch",
               "Epoch (1-based) of the job's latest step; 0 before the first step.",
               [](FamilyWriter& w, const JobSeries& job) { w.sample(job.labels, job.epoch); });
  write_family(out, jobs, "vapor_job_epochs_planned",
               "Number of epochs the job is configured to run.",
               [](FamilyWriter& w, const JobSeries& job) {
                 w.sample(job.labels, job.epochs_planned);
               });
  write_family(out, jobs, "vapor_job_step",
               "Latest recorded step of the job, counted across epochs; 0 before the first step.",
               [](FamilyWriter& w, const JobSeries& job) { w.sample(job.labels, job.step); });
  write_family(out, jobs, "vapor_job_steps_planned",
               "Total steps the job is configured to run (epochs times steps per epoch).",
               [](FamilyWriter& w, const JobSeries& job) {
                 w.sample(job.labels, job.steps_planned);
               });
  write_family(out, jobs, "vapor_job_progress_ratio",
               "Fraction of the job's planned steps done, 0..1.",
               [](FamilyWriter& w, const JobSeries& job) { w.sample(job.labels, job.progress); });
  write_family(out, jobs, "vapor_job_eta_seconds",
               "Estimated seconds until the job completes, from a smoothed step rate; present "
               "only while the job runs and the estimate is known.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.has_eta) w.sample(job.labels, job.eta);
               });
  write_family(out, jobs, "vapor_job_expected_completion_timestamp_seconds",
               "Unix time at which the job is expected to complete (latest step time plus ETA); "
               "present only while the job runs and the ETA is known.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.has_eta) w.sample(job.labels, job.expected_completion);
               });
  write_family(out, jobs, "vapor_job_start_timestamp_seconds",
               "Unix time at which the job started running; absent until it starts.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.start) w.sample(job.labels, *job.start);
               });
  write_family(out, jobs, "vapor_job_end_timestamp_seconds",
               "Unix time at which the job finished (complete, failed or stopped); absent until "
               "it finishes. Exact where a scrape would miss a short state.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.finished_at) w.sample(job.labels, unix_seconds(*job.finished_at));
               });
  write_family(out, jobs, "vapor_job_last_progress_timestamp_seconds",
               "Unix time of the job's latest recorded step; absent before the first step.",
               [](FamilyWriter& w, const JobSeries& job) {
                 if (job.has_step) w.sample(job.labels, job.last_progress);
               });
}

}  // namespace vapor::metrics::detail
