#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/job_events.hpp"
#include "core/job_spec.hpp"
#include "core/job_state.hpp"

namespace vapor::metrics {

/// A job as the metrics learn of it (at start-up restore, queue load or API submit).
struct JobIdentity {
  core::JobId id = 0;
  std::string name;
  std::string model;
  std::uint64_t epochs = 0;
  std::uint64_t total_steps = 0;
  std::uint64_t batch_size = 0;
  double learning_rate = 0.0;
};

/// Where a job stands when it is registered (a restored job may be mid-run or finished).
struct JobStatus {
  core::JobState state = core::JobState::queued;
  std::string reason;  ///< why a failed job failed
  std::uint64_t step = 0;
  std::uint64_t epoch = 0;
  double loss = 0.0;
  double accuracy = 0.0;
  std::optional<core::WallTime> started_at;
  std::optional<core::WallTime> finished_at;
  core::WallTime last_progress_at{};
  core::Scalars scalars;  ///< a real job's named scalars at its last step
};

/// Every `vapor_*` series of DESIGN.md. Process-wide series live in a prometheus-cpp registry
/// whose families are built once (counters cached per label set). Per-job series are plain
/// values with their label text escaped once, rendered straight to text: prometheus-cpp's
/// Collect + TextSerializer took ~19 ms at 1,000 jobs and Family::Remove scans the family,
/// against ~0.7 ms here (bench/metrics_render_bench). A finished job's series leave after
/// `finished_job_ttl` (see `expire_finished`); SQLite keeps its history.
/// Not thread-safe: the event loop calls everything, `render()` included.
class VaporMetrics final : public core::JobEventListener {
 public:
  struct BuildInfo {
    std::string version;
    std::string revision;
  };

  VaporMetrics(const BuildInfo& build, std::chrono::milliseconds finished_job_ttl);
  ~VaporMetrics() override;

  /// Creates the job's series; call before any event of that job.
  void add_job(const JobIdentity& job, const JobStatus& status);

  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged& event) override;

  /// Removes a job vapord no longer holds (a finished job evicted under scheduler.max_jobs):
  /// its series if they have not expired yet, and its count in vapor_jobs{state}.
  void forget_job(core::JobId id, core::JobState state);

  /// Removes the series of jobs that finished more than `finished_job_ttl` before `now`.
  /// Returns how many jobs were removed.
  std::size_t expire_finished(core::WallTime now);

  void set_config_reload(bool successful, core::WallTime at);
  void observe_store_commit(std::chrono::nanoseconds duration);
  void count_store_error();
  /// vapor_store_failing: the store stopped committing after a permanent error.
  void set_store_failing(bool failing);
  /// vapor_store_points_pruned_total
  void count_pruned_points(std::size_t points);
  /// vapor_job_metric_lines_rejected_total
  void count_metric_line_rejected();
  void set_websocket_clients(std::size_t clients);
  void count_websocket_disconnect(std::string_view reason);
  void count_http_request(std::string_view handler, unsigned status);

  /// The Prometheus text format (version 0.0.4) of every series.
  [[nodiscard]] std::string render() const;

  /// /metrics as a scrape sends it: `head` + `*jobs` is `render()`'s text. The process-wide
  /// families (`head`, a few KB) are rendered at each call; the per-job families (megabytes at
  /// 10,000 jobs) are rendered again only after a job changed, and while one rendering takes
  /// over a millisecond, not sooner than ten times that after the last, so that scrapes
  /// arriving together share one text (at most a tenth of the loop renders, each waiting
  /// response holds a reference, not a copy).
  struct Scrape {
    std::string head;
    std::shared_ptr<const std::string> jobs;
  };
  [[nodiscard]] Scrape scrape(std::chrono::steady_clock::time_point now);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The Content-Type of `render()`'s output.
inline constexpr std::string_view text_format_content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace vapor::metrics
