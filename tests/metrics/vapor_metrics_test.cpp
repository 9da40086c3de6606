#include "metrics/vapor_metrics.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/job_events.hpp"
#include "core/job_state.hpp"

namespace vapor::metrics {
namespace {

using core::JobState;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Labels = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------------------------
// A small reader of the text format, so tests assert what a scraper would see.

struct Sample {
  std::string name;
  Labels labels;
  std::string value;  ///< as written ("NaN", "+Inf", "0.25", ...)
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> help;  ///< family name → HELP text
  std::map<std::string, std::string> type;  ///< family name → TYPE

  [[nodiscard]] std::optional<std::string> text(const std::string& name,
                                                const Labels& labels) const {
    for (const Sample& sample : samples) {
      if (sample.name == name && sample.labels == labels) return sample.value;
    }
    return std::nullopt;
  }
  [[nodiscard]] std::optional<double> value(const std::string& name, const Labels& labels) const {
    const auto found = text(name, labels);
    if (!found) return std::nullopt;
    return std::strtod(found->c_str(), nullptr);
  }
  /// Every sample of `name` whose labels include `subset`.
  [[nodiscard]] std::vector<Sample> matching(const std::string& name,
                                             const Labels& subset = {}) const {
    std::vector<Sample> found;
    for (const Sample& sample : samples) {
      if (sample.name != name) continue;
      const bool includes = std::all_of(subset.begin(), subset.end(), [&](const auto& label) {
        const auto it = sample.labels.find(label.first);
        return it != sample.labels.end() && it->second == label.second;
      });
      if (includes) found.push_back(sample);
    }
    return found;
  }
};

Exposition parse(const std::string& text) {
  Exposition exposition;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const auto rest = line.substr(7);
      const auto space = rest.find(' ');
      auto& target = line[2] == 'H' ? exposition.help : exposition.type;
      target[rest.substr(0, space)] = space == std::string::npos ? "" : rest.substr(space + 1);
      continue;
    }
    if (line[0] == '#') continue;
    Sample sample;
    std::size_t at = line.find_first_of("{ ");
    sample.name = line.substr(0, at);
    if (line[at] == '{') {
      ++at;
      while (line[at] != '}') {
        const auto equals = line.find('=', at);
        const std::string name = line.substr(at, equals - at);
        std::string value;
        at = equals + 2;  // past ="
        while (line[at] != '"') {
          if (line[at] == '\\') {
            ++at;
            value += line[at] == 'n' ? '\n' : line[at];
          } else {
            value += line[at];
          }
          ++at;
        }
        ++at;  // past "
        if (line[at] == ',') ++at;
        sample.labels[name] = value;
      }
      ++at;  // past }
    }
    sample.value = line.substr(at + 1);
    exposition.samples.push_back(sample);
  }
  return exposition;
}

// ---------------------------------------------------------------------------------------------
// Scenario helpers.

const core::WallTime t0{std::chrono::seconds{1'800'000'000}};

double unix_seconds(core::WallTime time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

JobIdentity identity(core::JobId id, const std::string& name) {
  JobIdentity job;
  job.id = id;
  job.name = name;
  job.model = "resnet50";
  job.epochs = 4;
  job.total_steps = 400;
  job.batch_size = 64;
  job.learning_rate = 0.001;
  return job;
}

Labels job_labels(core::JobId id, const std::string& name) {
  return {{"job_id", std::to_string(id)}, {"job_name", name}};
}

Labels with(Labels labels, const std::string& name, const std::string& value) {
  labels[name] = value;
  return labels;
}

core::StepRecorded step(core::JobId id, std::uint64_t number, double loss,
                        std::optional<double> eta, core::WallTime ts) {
  core::StepRecorded event;
  event.job_id = id;
  event.step = number;
  event.epoch = (number - 1) / 100 + 1;
  event.loss = loss;
  event.accuracy = 0.5;
  event.progress = static_cast<double>(number) / 400.0;
  event.eta_seconds = eta;
  event.ts = ts;
  return event;
}

core::JobStateChanged transition(core::JobId id, JobState from, JobState to, core::WallTime ts,
                                 std::string reason = {}) {
  return {id, from, to, std::move(reason), ts};
}

class VaporMetricsTest : public ::testing::Test {
 protected:
  VaporMetrics metrics_{{"1.2.3", "abc1234"}, 10min};

  [[nodiscard]] Exposition scrape() const { return parse(metrics_.render()); }

  void add_running(core::JobId id, const std::string& name, core::WallTime started = t0) {
    metrics_.add_job(identity(id, name), {});
    metrics_.on_state_changed(transition(id, JobState::queued, JobState::running, started));
  }
};

std::vector<std::string> job_series_names() {
  return {"vapor_job_info",
          "vapor_job_state",
          "vapor_job_failure_info",
          "vapor_job_loss",
          "vapor_job_accuracy_ratio",
          "vapor_job_scalar",
          "vapor_job_epoch",
          "vapor_job_epochs_planned",
          "vapor_job_step",
          "vapor_job_steps_planned",
          "vapor_job_progress_ratio",
          "vapor_job_eta_seconds",
          "vapor_job_expected_completion_timestamp_seconds",
          "vapor_job_start_timestamp_seconds",
          "vapor_job_end_timestamp_seconds",
          "vapor_job_last_progress_timestamp_seconds"};
}

/// How many series of the per-job families name this job.
std::size_t series_of_job(const Exposition& exposition, core::JobId id) {
  std::size_t count = 0;
  for (const auto& name : job_series_names()) {
    count += exposition.matching(name, {{"job_id", std::to_string(id)}}).size();
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// Per-job series.

TEST_F(VaporMetricsTest, GaugesCarryTheLatestStepWithJobLabels) {
  add_running(7, "alpha", t0);
  metrics_.on_step(step(7, 1, 2.5, std::nullopt, t0 + 1s));
  metrics_.on_step(step(7, 150, 0.75, 300.0, t0 + 2s));

  const auto m = scrape();
  const auto labels = job_labels(7, "alpha");
  EXPECT_EQ(m.value("vapor_job_loss", labels), 0.75);
  EXPECT_EQ(m.value("vapor_job_accuracy_ratio", labels), 0.5);
  EXPECT_EQ(m.value("vapor_job_step", labels), 150);
  EXPECT_EQ(m.value("vapor_job_epoch", labels), 2);
  EXPECT_EQ(m.value("vapor_job_steps_planned", labels), 400);
  EXPECT_EQ(m.value("vapor_job_epochs_planned", labels), 4);
  EXPECT_EQ(m.value("vapor_job_progress_ratio", labels), 0.375);
  EXPECT_EQ(m.value("vapor_job_start_timestamp_seconds", labels), unix_seconds(t0));
  EXPECT_EQ(m.value("vapor_job_last_progress_timestamp_seconds", labels), unix_seconds(t0 + 2s));
  EXPECT_EQ(m.value("vapor_job_info", with(with(with(labels, "model", "resnet50"), "batch_size",
                                                    "64"),
                                           "learning_rate", "0.001")),
            1);
}

TEST_F(VaporMetricsTest, NamedScalarsAreOneSeriesPerNameWithTheLatestValue) {
  add_running(3, "real");
  auto first = step(3, 1, 2.0, std::nullopt, t0 + 1s);
  first.scalars = {{"val_loss", 2.5}, {"lr", 0.1}};
  metrics_.on_step(first);
  auto second = step(3, 2, 1.9, std::nullopt, t0 + 2s);
  second.scalars = {{"lr", std::numeric_limits<double>::infinity()}};
  metrics_.on_step(second);
  metrics_.on_step(step(3, 3, 1.8, std::nullopt, t0 + 3s));  // no scalars at this step

  const auto m = scrape();
  EXPECT_EQ(m.value("vapor_job_scalar", with(job_labels(3, "real"), "name", "val_loss")), 2.5)
      << "a name keeps its last reported value";
  EXPECT_EQ(m.value("vapor_job_scalar", with(job_labels(3, "real"), "name", "lr")),
            std::numeric_limits<double>::infinity());
  EXPECT_EQ(m.matching("vapor_job_scalar", {}).size(), 2u);

  add_running(4, "simulated");
  metrics_.on_step(step(4, 1, 2.0, std::nullopt, t0 + 1s));
  EXPECT_TRUE(scrape().matching("vapor_job_scalar", {{"job_id", "4"}}).empty())
      << "a job that reports no scalars has no scalar series";
}

TEST_F(VaporMetricsTest, ProgressRatioStaysWithinZeroAndOne) {
  add_running(1, "a");
  auto event = step(1, 1, 1.0, std::nullopt, t0);
  event.progress = 1.5;
  metrics_.on_step(event);
  EXPECT_EQ(scrape().value("vapor_job_progress_ratio", job_labels(1, "a")), 1.0);
  event.progress = -0.5;
  metrics_.on_step(event);
  EXPECT_EQ(scrape().value("vapor_job_progress_ratio", job_labels(1, "a")), 0.0);
}

TEST_F(VaporMetricsTest, QueuedJobHasNoLossStartOrProgressTimeYet) {
  metrics_.add_job(identity(1, "waiting"), {});
  const auto m = scrape();
  const auto labels = job_labels(1, "waiting");
  EXPECT_EQ(m.value("vapor_job_step", labels), 0);
  EXPECT_EQ(m.value("vapor_job_progress_ratio", labels), 0);
  EXPECT_FALSE(m.value("vapor_job_loss", labels));
  EXPECT_FALSE(m.value("vapor_job_accuracy_ratio", labels));
  EXPECT_FALSE(m.value("vapor_job_start_timestamp_seconds", labels));
  EXPECT_FALSE(m.value("vapor_job_end_timestamp_seconds", labels));
  EXPECT_FALSE(m.value("vapor_job_last_progress_timestamp_seconds", labels));
  EXPECT_FALSE(m.value("vapor_job_eta_seconds", labels));
}

TEST_F(VaporMetricsTest, EndTimestampIsTheExactTimeOfTheFinishEvenForAShortJob) {
  // A job that starts and ends between two scrapes: the end time, not a scrape, dates it.
  add_running(1, "short", t0);
  EXPECT_FALSE(scrape().value("vapor_job_end_timestamp_seconds", job_labels(1, "short")));
  metrics_.on_state_changed(transition(1, JobState::running, JobState::failed, t0 + 1500ms));
  const auto m = scrape();
  EXPECT_EQ(m.value("vapor_job_start_timestamp_seconds", job_labels(1, "short")),
            unix_seconds(t0));
  EXPECT_EQ(m.value("vapor_job_end_timestamp_seconds", job_labels(1, "short")),
            unix_seconds(t0 + 1500ms));

  JobStatus restored;
  restored.state = JobState::complete;
  restored.started_at = t0 - 1h;
  restored.finished_at = t0 - 30min;
  metrics_.add_job(identity(2, "restored"), restored);
  EXPECT_EQ(scrape().value("vapor_job_end_timestamp_seconds", job_labels(2, "restored")),
            unix_seconds(t0 - 30min))
      << "a restored job keeps its stored finish time";
}

TEST_F(VaporMetricsTest, JobStateIsOneHotAcrossAllFiveStates) {
  const std::vector<std::vector<JobState>> paths = {
      {JobState::queued},
      {JobState::queued, JobState::running},
      {JobState::queued, JobState::running, JobState::complete},
      {JobState::queued, JobState::running, JobState::failed},
      {JobState::queued, JobState::running, JobState::stopped},
      {JobState::queued, JobState::stopped},
  };
  core::JobId id = 0;
  for (const auto& path : paths) {
    ++id;
    const std::string name = "job" + std::to_string(id);
    metrics_.add_job(identity(id, name), {});
    for (std::size_t i = 1; i < path.size(); ++i) {
      metrics_.on_state_changed(transition(id, path[i - 1], path[i], t0));
    }
    const auto m = scrape();
    for (const JobState state : core::all_job_states) {
      const auto value = m.value(
          "vapor_job_state", with(job_labels(id, name), "state", std::string{to_string(state)}));
      ASSERT_TRUE(value) << name << " " << to_string(state);
      EXPECT_EQ(*value, state == path.back() ? 1.0 : 0.0) << name << " " << to_string(state);
    }
    EXPECT_EQ(m.matching("vapor_job_state", {{"job_id", std::to_string(id)}}).size(), 5U);
  }
}

TEST_F(VaporMetricsTest, EtaSeriesOnlyWhileKnownAndRunning) {
  add_running(1, "a");
  const auto labels = job_labels(1, "a");

  metrics_.on_step(step(1, 1, 2.0, std::nullopt, t0 + 1s));
  EXPECT_FALSE(scrape().value("vapor_job_eta_seconds", labels));
  EXPECT_FALSE(scrape().value("vapor_job_expected_completion_timestamp_seconds", labels));

  metrics_.on_step(step(1, 5, 1.5, 120.5, t0 + 5s));
  auto m = scrape();
  EXPECT_EQ(m.value("vapor_job_eta_seconds", labels), 120.5);
  EXPECT_EQ(m.value("vapor_job_expected_completion_timestamp_seconds", labels),
            unix_seconds(t0 + 5s) + 120.5);

  metrics_.on_step(step(1, 6, 1.4, std::nullopt, t0 + 6s));  // estimate lost again
  EXPECT_FALSE(scrape().value("vapor_job_eta_seconds", labels));

  metrics_.on_step(step(1, 7, 1.3, 100.0, t0 + 7s));
  EXPECT_TRUE(scrape().value("vapor_job_eta_seconds", labels));
  metrics_.on_state_changed(transition(1, JobState::running, JobState::complete, t0 + 8s));
  m = scrape();
  EXPECT_FALSE(m.value("vapor_job_eta_seconds", labels));
  EXPECT_FALSE(m.value("vapor_job_expected_completion_timestamp_seconds", labels));
  EXPECT_EQ(m.type.count("vapor_job_eta_seconds"), 0U) << "no family header without series";
}

TEST_F(VaporMetricsTest, EtaOfAJobThatIsNotRunningIsNotShown) {
  metrics_.add_job(identity(1, "a"), {});  // still queued
  metrics_.on_step(step(1, 1, 2.0, 50.0, t0));
  EXPECT_FALSE(scrape().value("vapor_job_eta_seconds", job_labels(1, "a")));
}

TEST_F(VaporMetricsTest, NonFiniteLossRendersAsNaNAndInf) {
  add_running(1, "nan-job");
  add_running(2, "inf-job");
  metrics_.on_step(step(1, 3, std::numeric_limits<double>::quiet_NaN(), std::nullopt, t0));
  metrics_.on_step(step(2, 3, std::numeric_limits<double>::infinity(), std::nullopt, t0));
  const std::string text = metrics_.render();
  EXPECT_NE(text.find("vapor_job_loss{job_id=\"1\",job_name=\"nan-job\"} NaN\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vapor_job_loss{job_id=\"2\",job_name=\"inf-job\"} +Inf\n"),
            std::string::npos);
}

TEST_F(VaporMetricsTest, FailedJobCarriesItsReasonOnFailureInfo) {
  add_running(1, "broken");
  add_running(2, "fine");
  add_running(3, "mystery");
  metrics_.on_state_changed(
      transition(1, JobState::running, JobState::failed, t0 + 1s, "nonfinite_loss"));
  metrics_.on_state_changed(transition(2, JobState::running, JobState::complete, t0 + 1s));
  metrics_.on_state_changed(transition(3, JobState::running, JobState::failed, t0 + 1s));

  const auto m = scrape();
  EXPECT_EQ(m.value("vapor_job_failure_info",
                    with(job_labels(1, "broken"), "reason", "nonfinite_loss")),
            1);
  EXPECT_EQ(m.value("vapor_job_failure_info", with(job_labels(3, "mystery"), "reason", "unknown")),
            1);
  EXPECT_TRUE(m.matching("vapor_job_failure_info", {{"job_id", "2"}}).empty());
  EXPECT_EQ(m.matching("vapor_job_failure_info").size(), 2U);
}

TEST_F(VaporMetricsTest, LabelValuesAreEscaped) {
  auto job = identity(1, "quoted");
  job.model = "res\"net\\50\nv2";
  metrics_.add_job(job, {});
  const std::string text = metrics_.render();
  EXPECT_NE(text.find("model=\"res\\\"net\\\\50\\nv2\""), std::string::npos) << text;
  EXPECT_EQ(parse(text).matching("vapor_job_info").at(0).labels.at("model"), job.model);
}

TEST_F(VaporMetricsTest, NumbersAreWrittenAsPlainDecimals) {
  auto job = identity(1, "small-lr");
  job.learning_rate = 3e-4;
  metrics_.add_job(job, {});
  metrics_.on_state_changed(transition(1, JobState::queued, JobState::running, t0));
  metrics_.on_step(step(1, 1, 1.25e-7, std::nullopt, t0 + 250ms));
  const std::string text = metrics_.render();
  EXPECT_NE(text.find("learning_rate=\"0.0003\""), std::string::npos) << text;
  EXPECT_NE(text.find("vapor_job_start_timestamp_seconds{job_id=\"1\",job_name=\"small-lr\"} "
                      "1800000000\n"),
            std::string::npos);
  EXPECT_NE(text.find("vapor_job_last_progress_timestamp_seconds"
                      "{job_id=\"1\",job_name=\"small-lr\"} 1800000000.25\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(parse(text).value("vapor_job_loss", job_labels(1, "small-lr")), 1.25e-7);
}

TEST_F(VaporMetricsTest, EventsOfUnknownJobsAreIgnored) {
  metrics_.on_step(step(99, 1, 1.0, 10.0, t0));
  metrics_.on_state_changed(transition(99, JobState::queued, JobState::running, t0));
  const auto m = scrape();
  EXPECT_EQ(series_of_job(m, 99), 0U);
  EXPECT_EQ(m.value("vapor_jobs_started_total", {}), 0);
}

// ---------------------------------------------------------------------------------------------
// Counts and counters.

TEST_F(VaporMetricsTest, JobsPerStateListsEveryStateIncludingZero) {
  auto m = scrape();
  for (const JobState state : core::all_job_states) {
    EXPECT_EQ(m.value("vapor_jobs", {{"state", std::string{to_string(state)}}}), 0)
        << to_string(state);
  }
  add_running(1, "a");
  add_running(2, "b");
  metrics_.add_job(identity(3, "c"), {});
  metrics_.on_state_changed(transition(2, JobState::running, JobState::stopped, t0, "user"));
  m = scrape();
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "queued"}}), 1);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "running"}}), 1);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "stopped"}}), 1);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "complete"}}), 0);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "failed"}}), 0);
}

TEST_F(VaporMetricsTest, CountersCountTransitionsSeenButNotRestoredJobs) {
  JobStatus done;
  done.state = JobState::complete;
  done.step = 400;
  done.started_at = t0 - 1h;
  done.finished_at = t0 - 30min;
  metrics_.add_job(identity(1, "restored-complete"), done);
  JobStatus failed = done;
  failed.state = JobState::failed;
  metrics_.add_job(identity(2, "restored-failed"), failed);
  JobStatus running;
  running.state = JobState::running;
  running.step = 10;
  running.started_at = t0 - 5min;
  metrics_.add_job(identity(3, "restored-running"), running);

  auto m = scrape();
  EXPECT_EQ(m.value("vapor_jobs_started_total", {}), 0);
  EXPECT_EQ(m.value("vapor_jobs_completed_total", {}), 0);
  EXPECT_EQ(m.value("vapor_jobs_failed_total", {}), 0);
  EXPECT_EQ(m.value("vapor_jobs_stopped_total", {}), 0);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "complete"}}), 1);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "failed"}}), 1);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "running"}}), 1);
  EXPECT_EQ(m.value("vapor_job_start_timestamp_seconds", job_labels(3, "restored-running")),
            unix_seconds(t0 - 5min));

  add_running(4, "d");
  add_running(5, "e");
  add_running(6, "f");
  metrics_.add_job(identity(7, "g"), {});
  metrics_.on_state_changed(transition(3, JobState::running, JobState::complete, t0));
  metrics_.on_state_changed(transition(4, JobState::running, JobState::failed, t0, "crashed"));
  metrics_.on_state_changed(transition(5, JobState::running, JobState::failed, t0, "stalled"));
  metrics_.on_state_changed(transition(6, JobState::running, JobState::stopped, t0, "user"));
  metrics_.on_state_changed(transition(7, JobState::queued, JobState::stopped, t0, "user"));
  metrics_.on_state_changed(transition(6, JobState::running, JobState::stopped, t0, "user"));

  m = scrape();
  EXPECT_EQ(m.value("vapor_jobs_started_total", {}), 3);
  EXPECT_EQ(m.value("vapor_jobs_completed_total", {}), 1);
  EXPECT_EQ(m.value("vapor_jobs_failed_total", {}), 2);
  EXPECT_EQ(m.value("vapor_jobs_stopped_total", {}), 2) << "a repeated event counts once";
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "complete"}}), 2);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "failed"}}), 3);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "stopped"}}), 2);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "running"}}), 0);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "queued"}}), 0);
}

TEST_F(VaporMetricsTest, AddingAJobAgainDoesNotCountItTwice) {
  add_running(1, "a");
  metrics_.add_job(identity(1, "a"), {});  // e.g. re-registered as queued
  const auto m = scrape();
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "running"}}), 0);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "queued"}}), 1);
  EXPECT_EQ(m.matching("vapor_job_info").size(), 1U);
}

// ---------------------------------------------------------------------------------------------
// Scrapes: the per-job text rendered once and shared.

TEST_F(VaporMetricsTest, AScrapeIsTheRenderedTextWithItsPerJobPartShared) {
  add_running(1, "a");
  metrics_.on_step(step(1, 1, 2.0, std::nullopt, t0 + 1s));
  const auto now = std::chrono::steady_clock::now();
  const auto first = metrics_.scrape(now);
  ASSERT_TRUE(first.jobs);
  EXPECT_EQ(first.head + *first.jobs, metrics_.render());
  EXPECT_NE(first.jobs->find("vapor_job_loss{job_id=\"1\",job_name=\"a\"} 2"), std::string::npos);

  metrics_.count_http_request("metrics", 200);
  const auto unchanged = metrics_.scrape(now + 1h);
  EXPECT_EQ(unchanged.jobs, first.jobs) << "no job changed: the same text, not a copy";
  EXPECT_NE(unchanged.head.find("handler=\"metrics\""), std::string::npos)
      << "the process-wide part is rendered at each scrape";

  metrics_.on_step(step(1, 2, 1.5, std::nullopt, t0 + 2s));
  const auto changed = metrics_.scrape(now + 1h);
  EXPECT_NE(changed.jobs, first.jobs);
  EXPECT_NE(changed.jobs->find("job_name=\"a\"} 1.5"), std::string::npos)
      << "a cheap rendering is never reused once a job changed";
}

TEST_F(VaporMetricsTest, ScrapesTogetherShareAnExpensiveRenderingForAWhile) {
  // 10,000 jobs: megabytes of text, well over a millisecond to render.
  for (core::JobId id = 1; id <= 10'000; ++id) add_running(id, "job-" + std::to_string(id));
  const auto now = std::chrono::steady_clock::now();
  const auto first = metrics_.scrape(now);
  ASSERT_GT(first.jobs->size(), 1'000'000u);

  metrics_.on_step(step(7, 3, 0.25, std::nullopt, t0 + 3s));
  const auto soon = metrics_.scrape(now + 1ms);
  EXPECT_EQ(soon.jobs, first.jobs) << "a scrape right after an expensive one shares its text";
  const auto later = metrics_.scrape(now + 1min);
  EXPECT_NE(later.jobs, first.jobs);
  EXPECT_NE(later.jobs->find("vapor_job_loss{job_id=\"7\",job_name=\"job-7\"} 0.25"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Expiry of finished jobs.

TEST_F(VaporMetricsTest, FinishedJobSeriesLeaveAfterTheTtlButStayCounted) {
  add_running(1, "done");
  add_running(2, "still-running");
  metrics_.on_step(step(1, 400, 0.1, 1.0, t0 + 1s));
  metrics_.on_step(step(2, 10, 1.0, 100.0, t0 + 1s));
  const core::WallTime finished = t0 + 2s;
  metrics_.on_state_changed(transition(1, JobState::running, JobState::complete, finished));

  EXPECT_EQ(metrics_.expire_finished(finished + 10min), 0U);
  auto m = scrape();
  EXPECT_EQ(series_of_job(m, 1), 16U) << "info, 5 states, 10 gauges (end time, no ETA once complete)";

  EXPECT_EQ(metrics_.expire_finished(finished + 10min + 1ms), 1U);
  m = scrape();
  EXPECT_EQ(series_of_job(m, 1), 0U);
  EXPECT_EQ(metrics_.render().find("job_name=\"done\""), std::string::npos);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "complete"}}), 1);
  EXPECT_EQ(m.value("vapor_jobs_completed_total", {}), 1);
  EXPECT_EQ(series_of_job(m, 2), 17U) << "a running job is never expired";

  EXPECT_EQ(metrics_.expire_finished(finished + 1h), 0U);
}

TEST_F(VaporMetricsTest, RestoredFinishedJobsExpireByTheirFinishTime) {
  JobStatus old_failure;
  old_failure.state = JobState::failed;
  old_failure.finished_at = t0 - 1h;
  metrics_.add_job(identity(1, "old"), old_failure);
  JobStatus recent = old_failure;
  recent.finished_at = t0 - 5min;
  metrics_.add_job(identity(2, "recent"), recent);

  EXPECT_EQ(metrics_.expire_finished(t0), 1U);
  const auto m = scrape();
  EXPECT_EQ(series_of_job(m, 1), 0U);
  EXPECT_GT(series_of_job(m, 2), 0U);
  EXPECT_EQ(m.value("vapor_jobs", {{"state", "failed"}}), 2);
}

// ---------------------------------------------------------------------------------------------
// Process-wide series.

TEST_F(VaporMetricsTest, BuildInfo) {
  EXPECT_EQ(scrape().value("vapor_build_info", {{"version", "1.2.3"}, {"revision", "abc1234"}}),
            1);
}

TEST_F(VaporMetricsTest, HttpRequestsCountedByHandlerAndCode) {
  metrics_.count_http_request("metrics", 200);
  metrics_.count_http_request("metrics", 200);
  metrics_.count_http_request("api_jobs", 200);
  metrics_.count_http_request("api_jobs", 404);
  const auto m = scrape();
  EXPECT_EQ(m.value("vapor_http_requests_total", {{"handler", "metrics"}, {"code", "200"}}), 2);
  EXPECT_EQ(m.value("vapor_http_requests_total", {{"handler", "api_jobs"}, {"code", "200"}}), 1);
  EXPECT_EQ(m.value("vapor_http_requests_total", {{"handler", "api_jobs"}, {"code", "404"}}), 1);
  EXPECT_EQ(m.matching("vapor_http_requests_total").size(), 3U);
  EXPECT_EQ(m.type.at("vapor_http_requests_total"), "counter");
}

TEST_F(VaporMetricsTest, StoreCommitHistogramBucketsFrom100MicrosecondsTo10Seconds) {
  metrics_.observe_store_commit(50us);
  metrics_.observe_store_commit(3ms);
  metrics_.observe_store_commit(20s);
  metrics_.count_store_error();
  const auto m = scrape();
  const std::string name = "vapor_store_commit_duration_seconds";
  EXPECT_EQ(m.type.at(name), "histogram");

  std::vector<std::string> bounds;
  for (const Sample& bucket : m.matching(name + "_bucket")) {
    bounds.push_back(bucket.labels.at("le"));
  }
  std::sort(bounds.begin(), bounds.end(), [](const std::string& a, const std::string& b) {
    return std::strtod(a.c_str(), nullptr) < std::strtod(b.c_str(), nullptr);
  });
  ASSERT_GE(bounds.size(), 10U);
  EXPECT_EQ(bounds.front(), "0.0001");
  EXPECT_EQ(bounds[bounds.size() - 2], "10");
  EXPECT_EQ(bounds.back(), "+Inf");

  EXPECT_EQ(m.value(name + "_bucket", {{"le", "0.0001"}}), 1);
  EXPECT_EQ(m.value(name + "_bucket", {{"le", "0.001"}}), 1);
  EXPECT_EQ(m.value(name + "_bucket", {{"le", "0.005"}}), 2);
  EXPECT_EQ(m.value(name + "_bucket", {{"le", "10"}}), 2);
  EXPECT_EQ(m.value(name + "_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_EQ(m.value(name + "_count", {}), 3);
  EXPECT_NEAR(*m.value(name + "_sum", {}), 20.00305, 1e-9);
  EXPECT_EQ(m.value("vapor_store_errors_total", {}), 1);
}

TEST_F(VaporMetricsTest, ConfigReloadOutcome) {
  auto m = scrape();
  EXPECT_EQ(m.value("vapor_config_last_reload_successful", {}), 1);
  EXPECT_FALSE(m.value("vapor_config_last_reload_success_timestamp_seconds", {}));

  metrics_.set_config_reload(true, t0);
  metrics_.set_config_reload(false, t0 + 1min);
  m = scrape();
  EXPECT_EQ(m.value("vapor_config_last_reload_successful", {}), 0);
  EXPECT_EQ(m.value("vapor_config_last_reload_success_timestamp_seconds", {}), unix_seconds(t0));

  metrics_.set_config_reload(true, t0 + 2min);
  m = scrape();
  EXPECT_EQ(m.value("vapor_config_last_reload_successful", {}), 1);
  EXPECT_EQ(m.value("vapor_config_last_reload_success_timestamp_seconds", {}),
            unix_seconds(t0 + 2min));
}

TEST_F(VaporMetricsTest, WebSocketClientsAndDisconnects) {
  metrics_.set_websocket_clients(3);
  metrics_.count_websocket_disconnect("send_queue_full");
  metrics_.count_websocket_disconnect("send_queue_full");
  metrics_.count_websocket_disconnect("client_closed");
  const auto m = scrape();
  EXPECT_EQ(m.value("vapor_websocket_clients", {}), 3);
  EXPECT_EQ(m.value("vapor_websocket_disconnects_total", {{"reason", "send_queue_full"}}), 2);
  EXPECT_EQ(m.value("vapor_websocket_disconnects_total", {{"reason", "client_closed"}}), 1);
}

TEST_F(VaporMetricsTest, EveryFamilyHasHelpAndType) {
  add_running(1, "a");
  metrics_.on_step(step(1, 1, 1.0, 5.0, t0));
  metrics_.on_state_changed(transition(1, JobState::running, JobState::failed, t0, "crashed"));
  metrics_.count_http_request("metrics", 200);
  metrics_.count_websocket_disconnect("client_closed");
  metrics_.set_config_reload(true, t0);
  const auto m = scrape();
  for (const Sample& sample : m.samples) {
    std::string family = sample.name;
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      const auto base = family.size() > suffix.size()
                            ? family.substr(0, family.size() - suffix.size())
                            : std::string{};
      if (family.ends_with(suffix) && m.type.count(base) != 0) family = base;
    }
    ASSERT_EQ(m.type.count(family), 1U) << family;
    EXPECT_GE(m.help.at(family).size(), 20U) << family << " needs a useful HELP";
  }
}

// ---------------------------------------------------------------------------------------------
// Real peer and golden file.

/// The fixed scenario of the golden file: one running job with a known ETA, one failed job,
/// one real job reporting named scalars, one HTTP request, one WebSocket disconnect.
void golden_scenario(VaporMetrics& metrics) {
  metrics.add_job(identity(1, "running-job"), {});
  metrics.on_state_changed(transition(1, JobState::queued, JobState::running, t0));
  metrics.on_step(step(1, 20, 1.2, 600.0, t0 + 30s));
  metrics.add_job(identity(2, "failed-job"), {});
  metrics.on_state_changed(transition(2, JobState::queued, JobState::running, t0));
  metrics.on_step(step(2, 3, 2.0, std::nullopt, t0 + 4s));
  metrics.on_state_changed(transition(2, JobState::running, JobState::failed, t0 + 5s, "crashed"));
  metrics.add_job(identity(9, "real-job"), {});
  metrics.on_state_changed(transition(9, JobState::queued, JobState::running, t0));
  auto reported = step(9, 5, 0.8, std::nullopt, t0 + 6s);
  reported.scalars = {{"val_loss", 0.9}, {"lr", 0.001}};
  metrics.on_step(reported);
  metrics.count_http_request("metrics", 200);
  metrics.count_websocket_disconnect("send_queue_full");
}

/// Sorted, unique `name{label,names}` lines of every sample.
std::string metric_names(const Exposition& exposition) {
  std::set<std::string> lines;
  for (const Sample& sample : exposition.samples) {
    std::string line = sample.name + "{";
    bool first = true;
    for (const auto& label : sample.labels) {
      if (!first) line += ',';
      line += label.first;
      first = false;
    }
    lines.insert(line + "}");
  }
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(VaporMetricsGolden, MetricNamesMatchTheCheckedInList) {
  VaporMetrics metrics({"1.2.3", "abc1234"}, 10min);
  golden_scenario(metrics);
  const std::string actual = metric_names(parse(metrics.render()));
  const fs::path golden = fs::path(VAPOR_TEST_DATA_DIR) / "golden" / "metric_names.txt";
  if (std::getenv("VAPOR_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden) << actual;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden;
  EXPECT_EQ(actual, read_text(golden))
      << "the series a user sees changed; if intended, rerun with VAPOR_UPDATE_GOLDEN=1 and "
         "update dashboards, alert rules and DESIGN.md to match";
}

/// A scrape with every sample's value replaced by `_`: what is left is what dashboards and
/// alert rules depend on (HELP and TYPE, names, label names and values, order).
std::string masked_scrape(const std::string& text) {
  std::istringstream in(text);
  std::string masked;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.front() != '#') line = line.substr(0, line.rfind(' ')) + " _";
    masked += line + "\n";
  }
  return masked;
}

TEST(VaporMetricsGolden, AFullScrapeMatchesTheCheckedInOne) {
  VaporMetrics metrics({"1.2.3", "abc1234"}, 10min);
  golden_scenario(metrics);
  const std::string actual = masked_scrape(metrics.render());
  const fs::path golden = fs::path(VAPOR_TEST_DATA_DIR) / "golden" / "scrape.txt";
  if (std::getenv("VAPOR_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden) << actual;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden;
  EXPECT_EQ(actual, read_text(golden))
      << "/metrics changed (help, type, labels or order); if intended, rerun with "
         "VAPOR_UPDATE_GOLDEN=1 and review the diff of tests/metrics/golden/scrape.txt";
}

std::optional<fs::path> find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream folders(path == nullptr ? "/usr/bin:/bin" : path);
  std::string folder;
  while (std::getline(folders, folder, ':')) {
    const fs::path candidate = fs::path(folder.empty() ? "." : folder) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

struct PromtoolResult {
  int status = -1;
  std::string output;
};

/// Runs `promtool check metrics < exposition`, capturing stdout and stderr together.
PromtoolResult promtool_check(const fs::path& promtool, const std::string& exposition) {
  const fs::path folder = fs::temp_directory_path() /
                          ("vapor-metrics-test-" + std::to_string(::getpid()));
  fs::create_directories(folder);
  const fs::path input = folder / "metrics.txt";
  const fs::path output = folder / "promtool.out";
  std::ofstream(input, std::ios::binary) << exposition;
  const std::string command = "'" + promtool.string() + "' check metrics < '" + input.string() +
                              "' > '" + output.string() + "' 2>&1";
  const int raw = std::system(command.c_str());
  PromtoolResult result;
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  result.output = read_text(output);
  fs::remove_all(folder);
  return result;
}

TEST(VaporMetricsPromtool, CheckMetricsReportsNoProblem) {
  const auto promtool = find_on_path("promtool");
  ASSERT_TRUE(promtool) << "promtool not found on PATH (Debian package `prometheus`)";

  VaporMetrics metrics({"1.2.3", "abc1234"}, 10min);
  golden_scenario(metrics);
  // Every other kind of series too: all states, a NaN loss, escapes, restored jobs.
  metrics.add_job(identity(3, "queued-job"), {});
  auto odd = identity(4, "nan-job");
  odd.model = "res\"net\\50";
  metrics.add_job(odd, {});
  metrics.on_state_changed(transition(4, JobState::queued, JobState::running, t0));
  metrics.on_step(step(4, 1, std::numeric_limits<double>::quiet_NaN(), std::nullopt, t0));
  metrics.add_job(identity(5, "stopped-job"), {});
  metrics.on_state_changed(transition(5, JobState::queued, JobState::stopped, t0, "user"));
  JobStatus complete;
  complete.state = JobState::complete;
  complete.step = 400;
  complete.started_at = t0 - 1h;
  complete.finished_at = t0 - 1min;
  complete.last_progress_at = t0 - 1min;
  metrics.add_job(identity(6, "restored-job"), complete);
  metrics.set_config_reload(true, t0);
  metrics.set_websocket_clients(2);
  metrics.count_http_request("api_job", 404);
  metrics.observe_store_commit(2ms);
  metrics.count_store_error();

  const std::string exposition = metrics.render();
  ASSERT_NE(exposition.find(" NaN\n"), std::string::npos) << "scenario lost its NaN";
  const auto result = promtool_check(*promtool, exposition);
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(result.output, "") << "promtool reported problems:\n" << result.output;
}

TEST(VaporMetricsPromtool, CheckCatchesABrokenExposition) {
  // The check above can fail: promtool rejects a counter without _total and a missing HELP.
  const auto promtool = find_on_path("promtool");
  ASSERT_TRUE(promtool) << "promtool not found on PATH (Debian package `prometheus`)";
  const auto result = promtool_check(*promtool, "# TYPE vapor_bad counter\nvapor_bad 1\n");
  EXPECT_FALSE(result.status == 0 && result.output.empty()) << result.output;
}

}  // namespace
}  // namespace vapor::metrics
