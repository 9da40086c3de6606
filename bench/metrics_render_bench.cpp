// /metrics benchmark: how long VaporMetrics::render() holds the event loop with 1,000 and 10,000
// jobs (every job running, mid-run, ETA known: the most series a job can have), against a peer
// measured in the same run: the same per-job series as prometheus-cpp families (one Gauge per
// series, Registry::Collect + TextSerializer), which is how the library is meant to be used.
// Also reported: on_step cost, and the cost of dropping one finished job's series
// (expire_finished against Family::Remove of the job's 17 series).
//
//   metrics_render_bench [repetitions]     (default: 30 renders per job count)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "core/job_state.hpp"
#include "metrics/vapor_metrics.hpp"

namespace {

using namespace vapor;
using Millis = std::chrono::duration<double, std::milli>;
using Clock = std::chrono::steady_clock;

const core::WallTime run_start{std::chrono::seconds{1'800'000'000}};

core::StepRecorded step_of(core::JobId id, std::uint64_t step) {
  core::StepRecorded event;
  event.job_id = id;
  event.step = step;
  event.epoch = step / 100 + 1;
  event.loss = 2.5 / static_cast<double>(step + 1);
  event.accuracy = 0.1 + 0.8 * static_cast<double>(step) / 1000.0;
  event.progress = static_cast<double>(step) / 1000.0;
  event.eta_seconds = 1.5 * static_cast<double>(1000 - step);
  event.ts = run_start + std::chrono::milliseconds{1500 * static_cast<std::int64_t>(step)};
  return event;
}

std::string name_of(core::JobId id) { return "resnet-run-" + std::to_string(id); }

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Timing {
  double render_median_ms = 0;
  double render_min_ms = 0;
  std::size_t bytes = 0;
  double remove_per_job_us = 0;
};

template <typename Render>
void time_renders(Timing& timing, int repetitions, Render render) {
  std::vector<double> samples;
  for (int i = 0; i < repetitions; ++i) {
    const auto start = Clock::now();
    const std::string text = render();
    samples.push_back(Millis(Clock::now() - start).count());
    timing.bytes = text.size();
  }
  timing.render_median_ms = median(samples);
  timing.render_min_ms = *std::min_element(samples.begin(), samples.end());
}

Timing measure_vapor(int jobs, int repetitions, double& step_ns) {
  metrics::VaporMetrics metrics({"0.1.0", "bench"}, std::chrono::hours{1});
  for (core::JobId id = 1; id <= jobs; ++id) {
    metrics.add_job({id, name_of(id), "resnet50", 10, 1000, 256, 3e-4}, {});
    metrics.on_state_changed({id, core::JobState::queued, core::JobState::running, "", run_start});
    metrics.on_step(step_of(id, 437));
  }
  metrics.count_http_request("/metrics", 200);
  metrics.observe_store_commit(std::chrono::milliseconds{3});

  Timing timing;
  time_renders(timing, repetitions, [&] { return metrics.render(); });

  const int steps = 200'000;
  const auto step_start = Clock::now();
  for (int i = 0; i < steps; ++i) {
    metrics.on_step(step_of(i % jobs + 1, 438 + static_cast<std::uint64_t>(i / jobs)));
  }
  step_ns = std::chrono::duration<double, std::nano>(Clock::now() - step_start).count() / steps;

  for (core::JobId id = 1; id <= jobs; ++id) {
    metrics.on_state_changed({id, core::JobState::running, core::JobState::complete, "",
                              run_start + std::chrono::hours{1}});
  }
  const auto expire_start = Clock::now();
  const std::size_t expired = metrics.expire_finished(run_start + std::chrono::hours{3});
  timing.remove_per_job_us =
      std::chrono::duration<double, std::micro>(Clock::now() - expire_start).count() /
      static_cast<double>(expired);
  return timing;
}

/// The peer: the same per-job series as prometheus-cpp families.
Timing measure_prometheus_cpp(int jobs, int repetitions) {
  static const char* const names[] = {
      "vapor_job_loss", "vapor_job_accuracy_ratio", "vapor_job_epoch", "vapor_job_epochs_planned",
      "vapor_job_step", "vapor_job_steps_planned", "vapor_job_progress_ratio",
      "vapor_job_eta_seconds", "vapor_job_expected_completion_timestamp_seconds",
      "vapor_job_start_timestamp_seconds", "vapor_job_last_progress_timestamp_seconds"};
  prometheus::Registry registry;
  using GaugeFamily = prometheus::Family<prometheus::Gauge>;
  auto& info = prometheus::BuildGauge().Name("vapor_job_info").Help("info").Register(registry);
  auto& state = prometheus::BuildGauge().Name("vapor_job_state").Help("state").Register(registry);
  std::vector<GaugeFamily*> families;
  for (const char* name : names) {
    families.push_back(&prometheus::BuildGauge().Name(name).Help("help").Register(registry));
  }
  std::vector<std::pair<GaugeFamily*, prometheus::Gauge*>> series;
  for (core::JobId id = 1; id <= jobs; ++id) {
    const prometheus::Labels labels{{"job_id", std::to_string(id)}, {"job_name", name_of(id)}};
    auto info_labels = labels;
    info_labels.insert({{"model", "resnet50"}, {"batch_size", "256"}, {"learning_rate", "3e-4"}});
    series.emplace_back(&info, &info.Add(info_labels));
    for (const core::JobState each : core::all_job_states) {
      auto state_labels = labels;
      state_labels.emplace("state", std::string{to_string(each)});
      series.emplace_back(&state, &state.Add(state_labels));
    }
    for (GaugeFamily* family : families) {
      auto& gauge = family->Add(labels);
      gauge.Set(1'800'000'437.5 + static_cast<double>(id));
      series.emplace_back(family, &gauge);
    }
  }

  Timing timing;
  time_renders(timing, repetitions, [&] {
    return prometheus::TextSerializer{}.Serialize(registry.Collect());
  });

  // Family::Remove scans its family for the pointer, so removing every job would be quadratic:
  // time the first 100 jobs' series only.
  const std::size_t removed_jobs = 100;
  const std::size_t per_job = series.size() / static_cast<std::size_t>(jobs);
  const auto remove_start = Clock::now();
  for (std::size_t i = 0; i < removed_jobs * per_job; ++i) {
    series[i].first->Remove(series[i].second);
  }
  timing.remove_per_job_us =
      std::chrono::duration<double, std::micro>(Clock::now() - remove_start).count() /
      static_cast<double>(removed_jobs);
  return timing;
}

}  // namespace

int main(int argc, char** argv) {
  const int repetitions = std::max(argc > 1 ? std::atoi(argv[1]) : 30, 1);
  for (const int jobs : {1000, 10000}) {
    double step_ns = 0;
    const Timing vapor_timing = measure_vapor(jobs, repetitions, step_ns);
    const Timing peer = measure_prometheus_cpp(jobs, repetitions);
    std::printf(
        "%5d jobs  VaporMetrics::render      median %8.2f ms  min %8.2f ms  %9zu bytes\n"
        "            prometheus-cpp families  median %8.2f ms  min %8.2f ms  %9zu bytes"
        "  (render ratio %.1fx)\n"
        "            on_step %.0f ns;  dropping one finished job's series:"
        " expire_finished %.2f us, Family::Remove %.0f us\n",
        jobs, vapor_timing.render_median_ms, vapor_timing.render_min_ms, vapor_timing.bytes,
        peer.render_median_ms, peer.render_min_ms, peer.bytes,
        peer.render_median_ms / vapor_timing.render_median_ms, step_ns,
        vapor_timing.remove_per_job_us, peer.remove_per_job_us);
  }
  return 0;
}
