#include "metrics/vapor_metrics.hpp"

#include "metrics/detail/job_series.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

// Two halves, one exposition:
//  - process-wide series (build info, job counts, counters, WebSocket, HTTP, store) live in a
//    prometheus-cpp registry and are serialised by its TextSerializer;
//  - per-job series (up to 17 per job) are plain values in one struct per job, each job's label
//    text rendered once when the job is added, and written straight into the output.
// Kept as prometheus-cpp families (one Gauge per series), the per-job series made render() take
// ~19 ms at 1,000 jobs and ~190 ms at 10,000 (Collect copies every label string, TextSerializer
// formats through an ostream), and dropping one finished job ~0.3 ms / ~18 ms, because
// Family::Remove scans its whole family. This writer takes ~0.7 ms / ~7.7 ms and drops a job in
// well under a microsecond; bench/metrics_render_bench.cpp measures both in one run.

namespace vapor::metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

using detail::append_escaped;
using detail::append_label;
using detail::JobSeries;
using detail::JobTable;
using detail::reason_or_unknown;
using detail::render_jobs;
using detail::unix_seconds;
using detail::value_text;

constexpr std::size_t state_count = std::size(core::all_job_states);

std::size_t index_of(core::JobState state) { return static_cast<std::size_t>(state); }

/// Hash for string-keyed maps that accepts a `std::string_view` without building a string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept {
    return std::hash<std::string_view>{}(text);
  }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

// 100 µs to 10 s in 1-2.5-5 steps: a healthy commit of one flush lands in the low milliseconds.
const Histogram::BucketBoundaries store_commit_buckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,   10.0};

Family<Gauge>& gauge_family(prometheus::Registry& registry, const std::string& name,
                            const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

Counter& counter(prometheus::Registry& registry, const std::string& name,
                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

struct VaporMetrics::Impl {
  Impl(const BuildInfo& build, std::chrono::milliseconds ttl);

  void enter_state(JobSeries& job, core::JobState state) {
    jobs_in_state[index_of(job.state)]->Decrement();
    jobs_in_state[index_of(state)]->Increment();
    job.state = state;
  }

  std::chrono::milliseconds finished_job_ttl;
  prometheus::Registry registry;

  Family<Gauge>& jobs_family;
  Family<Gauge>& config_reload_success_time_family;
  Family<Counter>& websocket_disconnects_family;
  Family<Counter>& http_requests_family;

  std::array<Gauge*, state_count> jobs_in_state{};
  Counter& jobs_started;
  Counter& jobs_completed;
  Counter& jobs_failed;
  Counter& jobs_stopped;
  Gauge& config_reload_successful;
  Gauge* config_reload_success_time = nullptr;  ///< absent until a load succeeds
  Gauge& websocket_clients;
  Histogram& store_commit_duration;
  Counter& store_errors;
  Gauge& store_failing;
  Counter& store_points_pruned;
  Counter& metric_lines_rejected;

  StringMap<Counter*> websocket_disconnects;  ///< by reason
  StringMap<std::unordered_map<unsigned, Counter*>> http_requests;  ///< by handler, then code

  JobTable jobs;
  /// Finished jobs by finish time, oldest first. An entry is stale (and skipped) when its job is
  /// gone or was registered again with another finish time.
  std::multimap<core::WallTime, core::JobId> finished_order;
  /// Capacity for the next render(), from the size of the last one.
  mutable std::size_t render_size_hint = 0;

  /// Bumped whenever a per-job series changes; scrape() renders them again only after that.
  std::uint64_t jobs_generation = 0;
  std::uint64_t rendered_generation = 0;
  std::shared_ptr<const std::string> rendered_jobs;
  std::chrono::steady_clock::time_point rendered_at{};
  std::chrono::steady_clock::duration render_took{};
};

VaporMetrics::Impl::Impl(const BuildInfo& build, std::chrono::milliseconds ttl)
    : finished_job_ttl(ttl),
      jobs_family(gauge_family(
          registry, "vapor_jobs",
          "Number of jobs in each state, including finished jobs whose per-job series have "
          "expired.")),
      config_reload_success_time_family(gauge_family(
          registry, "vapor_config_last_reload_success_timestamp_seconds",
          "Unix time of the last successful load of the job queue.")),
      websocket_disconnects_family(
          prometheus::BuildCounter()
              .Name("vapor_websocket_disconnects_total")
              .Help("WebSocket live-feed clients disconnected, by reason.")
              .Register(registry)),
      http_requests_family(prometheus::BuildCounter()
                               .Name("vapor_http_requests_total")
                               .Help("HTTP requests answered, by handler and status code.")
                               .Register(registry)),
      jobs_started(counter(registry, "vapor_jobs_started_total",
                           "Jobs that started running since this vapord started.")),
      jobs_completed(counter(registry, "vapor_jobs_completed_total",
                             "Jobs that completed since this vapord started.")),
      jobs_failed(counter(registry, "vapor_jobs_failed_total",
                          "Jobs that failed since this vapord started.")),
      jobs_stopped(counter(registry, "vapor_jobs_stopped_total",
                           "Jobs stopped by a user since this vapord started.")),
      config_reload_successful(
          gauge_family(registry, "vapor_config_last_reload_successful",
                       "1 if the last load of the job queue succeeded, 0 if it failed "
                       "validation (and changed nothing).")
              .Add({})),
      websocket_clients(gauge_family(registry, "vapor_websocket_clients",
                                     "WebSocket live-feed clients currently connected.")
                            .Add({})),
      store_commit_duration(
          prometheus::BuildHistogram()
              .Name("vapor_store_commit_duration_seconds")
              .Help("Duration of one SQLite flush (one transaction carrying every row since the "
                    "previous flush).")
              .Register(registry)
              .Add({}, store_commit_buckets)),
      store_errors(counter(
          registry, "vapor_store_errors_total",
          "SQLite commits that failed (transient failures keep their rows for the next "
          "commit; a permanent one also sets vapor_store_failing).")),
      store_failing(gauge_family(registry, "vapor_store_failing",
                                 "1 once a commit failed permanently (constraint, corruption, "
                                 "read-only or replaced file): history is no longer saved "
                                 "until vapord is restarted on a sound database.")
                        .Add({})),
      store_points_pruned(counter(registry, "vapor_store_points_pruned_total",
                                  "Points deleted by retention (store.keep_points) since this "
                                  "vapord started.")),
      metric_lines_rejected(counter(
          registry, "vapor_job_metric_lines_rejected_total",
          "Metric lines from command jobs' trainers that were not points (bad JSON, a missing "
          "key, a step that does not increase, too long); each is noted in the job's log.")) {
  gauge_family(registry, "vapor_build_info",
               "Version and source revision of the running vapord; always 1.")
      .Add({{"version", build.version}, {"revision", build.revision}})
      .Set(1.0);
  for (const core::JobState state : core::all_job_states) {
    jobs_in_state[index_of(state)] = &jobs_family.Add({{"state", std::string{to_string(state)}}});
  }
  // No load has failed yet; the owner reports the initial load through set_config_reload.
  config_reload_successful.Set(1.0);
}

VaporMetrics::VaporMetrics(const BuildInfo& build, std::chrono::milliseconds finished_job_ttl)
    : impl_(std::make_unique<Impl>(build, finished_job_ttl)) {}

VaporMetrics::~VaporMetrics() = default;

void VaporMetrics::add_job(const JobIdentity& job, const JobStatus& status) {
  Impl& impl = *impl_;
  ++impl.jobs_generation;
  auto [entry, inserted] = impl.jobs.try_emplace(job.id);
  JobSeries& series = entry->second;
  if (!inserted) {
    // Registered again: replace its series without counting the job twice.
    impl.jobs_in_state[index_of(series.state)]->Decrement();
    series = JobSeries{};
  }
  impl.jobs_in_state[index_of(status.state)]->Increment();
  series.state = status.state;

  append_label(series.labels, "job_id", std::to_string(job.id));
  append_label(series.labels, "job_name", job.name);
  series.info_labels = series.labels;
  append_label(series.info_labels, "model", job.model);
  append_label(series.info_labels, "batch_size", std::to_string(job.batch_size));
  append_label(series.info_labels, "learning_rate", value_text(job.learning_rate));

  series.epochs_planned = static_cast<double>(job.epochs);
  series.steps_planned = static_cast<double>(job.total_steps);
  series.epoch = static_cast<double>(status.epoch);
  series.step = static_cast<double>(status.step);
  series.progress = job.total_steps == 0
                        ? 0.0
                        : std::min(1.0, static_cast<double>(status.step) /
                                            static_cast<double>(job.total_steps));
  if (status.step > 0) {
    series.has_step = true;
    series.loss = status.loss;
    series.accuracy = status.accuracy;
    series.scalars = status.scalars;
    series.last_progress = unix_seconds(status.last_progress_at);
  }
  if (status.started_at) series.start = unix_seconds(*status.started_at);
  series.failure_reason.clear();
  append_escaped(series.failure_reason, reason_or_unknown(status.reason));
  if (core::is_terminal(status.state)) {
    // Without a recorded finish time the job is old: the next sweep expires it.
    series.finished_at = status.finished_at.value_or(status.last_progress_at);
    impl.finished_order.emplace(*series.finished_at, job.id);
  }
}

void VaporMetrics::on_step(const core::StepRecorded& event) {
  const auto found = impl_->jobs.find(event.job_id);
  if (found == impl_->jobs.end()) return;
  ++impl_->jobs_generation;
  JobSeries& job = found->second;

  job.epoch = static_cast<double>(event.epoch);
  job.step = static_cast<double>(event.step);
  job.progress = std::clamp(event.progress, 0.0, 1.0);
  job.has_step = true;
  job.loss = event.loss;
  job.accuracy = event.accuracy;
  core::merge_scalars(job.scalars, event.scalars);
  job.last_progress = unix_seconds(event.ts);
  job.has_eta = event.eta_seconds.has_value() && job.state == core::JobState::running;
  if (job.has_eta) {
    job.eta = *event.eta_seconds;
    job.expected_completion = job.last_progress + job.eta;
  }
}

void VaporMetrics::on_state_changed(const core::JobStateChanged& event) {
  Impl& impl = *impl_;
  const auto found = impl.jobs.find(event.job_id);
  if (found == impl.jobs.end() || found->second.state == event.to) return;
  ++impl.jobs_generation;
  JobSeries& job = found->second;

  impl.enter_state(job, event.to);
  switch (event.to) {
    case core::JobState::queued:
      break;
    case core::JobState::running:
      impl.jobs_started.Increment();
      if (!job.start) job.start = unix_seconds(event.ts);
      break;
    case core::JobState::complete:
      impl.jobs_completed.Increment();
      break;
    case core::JobState::failed:
      impl.jobs_failed.Increment();
      job.failure_reason.clear();
      append_escaped(job.failure_reason, reason_or_unknown(event.reason));
      break;
    case core::JobState::stopped:
      impl.jobs_stopped.Increment();
      break;
  }
  if (event.to != core::JobState::running) job.has_eta = false;
  if (core::is_terminal(event.to)) {
    job.finished_at = event.ts;
    impl.finished_order.emplace(event.ts, event.job_id);
  }
}

void VaporMetrics::forget_job(core::JobId id, core::JobState state) {
  Impl& impl = *impl_;
  impl.jobs_in_state[index_of(state)]->Decrement();
  if (impl.jobs.erase(id) > 0) ++impl.jobs_generation;  // finished_order's entry goes stale
}

std::size_t VaporMetrics::expire_finished(core::WallTime now) {
  Impl& impl = *impl_;
  std::size_t removed = 0;
  auto entry = impl.finished_order.begin();
  while (entry != impl.finished_order.end() && now - entry->first > impl.finished_job_ttl) {
    const auto job = impl.jobs.find(entry->second);
    if (job != impl.jobs.end() && job->second.finished_at == entry->first) {
      impl.jobs.erase(job);  // vapor_jobs{state} keeps counting it
      ++impl.jobs_generation;
      ++removed;
    }
    entry = impl.finished_order.erase(entry);
  }
  return removed;
}

void VaporMetrics::set_config_reload(bool successful, core::WallTime at) {
  Impl& impl = *impl_;
  impl.config_reload_successful.Set(successful ? 1.0 : 0.0);
  if (!successful) return;
  if (impl.config_reload_success_time == nullptr) {
    impl.config_reload_success_time = &impl.config_reload_success_time_family.Add({});
  }
  impl.config_reload_success_time->Set(unix_seconds(at));
}

void VaporMetrics::observe_store_commit(std::chrono::nanoseconds duration) {
  impl_->store_commit_duration.Observe(std::chrono::duration<double>(duration).count());
}

void VaporMetrics::count_store_error() { impl_->store_errors.Increment(); }

void VaporMetrics::set_store_failing(bool failing) {
  impl_->store_failing.Set(failing ? 1.0 : 0.0);
}

void VaporMetrics::count_metric_line_rejected() { impl_->metric_lines_rejected.Increment(); }

void VaporMetrics::count_pruned_points(std::size_t points) {
  impl_->store_points_pruned.Increment(static_cast<double>(points));
}

void VaporMetrics::set_websocket_clients(std::size_t clients) {
  impl_->websocket_clients.Set(static_cast<double>(clients));
}

void VaporMetrics::count_websocket_disconnect(std::string_view reason) {
  Impl& impl = *impl_;
  auto found = impl.websocket_disconnects.find(reason);
  if (found == impl.websocket_disconnects.end()) {
    Counter& added = impl.websocket_disconnects_family.Add({{"reason", std::string{reason}}});
    found = impl.websocket_disconnects.emplace(std::string{reason}, &added).first;
  }
  found->second->Increment();
}

void VaporMetrics::count_http_request(std::string_view handler, unsigned status) {
  Impl& impl = *impl_;
  auto by_handler = impl.http_requests.find(handler);
  if (by_handler == impl.http_requests.end()) {
    by_handler = impl.http_requests.try_emplace(std::string{handler}).first;
  }
  auto by_code = by_handler->second.find(status);
  if (by_code == by_handler->second.end()) {
    Counter& added = impl.http_requests_family.Add(
        {{"handler", std::string{handler}}, {"code", std::to_string(status)}});
    by_code = by_handler->second.emplace(status, &added).first;
  }
  by_code->second->Increment();
}

VaporMetrics::Scrape VaporMetrics::scrape(std::chrono::steady_clock::time_point now) {
  // Below a millisecond a rendering costs less than sharing a stale one would confuse.
  constexpr auto cheap = std::chrono::milliseconds(1);
  constexpr int reuse_factor = 10;
  Impl& impl = *impl_;
  Scrape out{prometheus::TextSerializer{}.Serialize(impl.registry.Collect()), nullptr};
  const bool current = impl.rendered_jobs && impl.rendered_generation == impl.jobs_generation;
  const bool too_soon = impl.rendered_jobs && impl.render_took > cheap &&
                        now - impl.rendered_at < impl.render_took * reuse_factor;
  if (!current && !too_soon) {
    const auto began = std::chrono::steady_clock::now();
    auto text = std::make_shared<std::string>();
    text->reserve(impl.render_size_hint + impl.render_size_hint / 8);
    render_jobs(*text, impl.jobs);
    impl.render_size_hint = text->size();
    impl.render_took = std::chrono::steady_clock::now() - began;
    impl.rendered_at = now;
    impl.rendered_generation = impl.jobs_generation;
    impl.rendered_jobs = std::move(text);
  }
  out.jobs = impl.rendered_jobs;
  return out;
}

std::string VaporMetrics::render() const {
  const Impl& impl = *impl_;
  std::string out;
  out.reserve(impl.render_size_hint + impl.render_size_hint / 8);
  out += prometheus::TextSerializer{}.Serialize(impl.registry.Collect());
  render_jobs(out, impl.jobs);
  impl.render_size_hint = out.size();
  return out;
}

}  // namespace vapor::metrics
