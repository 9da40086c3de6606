#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

namespace vapor::cli {

/// What `vaporctl watch` knows of one job, folded from the feed's messages.
struct WatchedJob {
  std::int64_t id = 0;
  std::string name;
  std::string state = "queued";
  std::string reason;
  std::uint64_t step = 0;
  std::uint64_t steps = 0;
  std::uint64_t epoch = 0;
  std::uint64_t epochs = 0;
  std::optional<double> loss;  ///< empty before the first point; NaN when not finite
  std::optional<double> eta_seconds;
  std::deque<double> recent_losses;  ///< for the sparkline, newest last
};

/// Folds feed messages into per-job state and renders it, as bars for a terminal or as plain
/// lines for a pipe. Pure: no I/O, so it is tested on messages alone.
class ProgressView {
 public:
  static constexpr std::size_t sparkline_width = 16;

  /// Watch these jobs (from the hello's job summaries).
  void add_job(const boost::json::object& summary);
  /// Applies a point or state message; returns true if it concerns a watched job.
  bool apply(const boost::json::object& message);

  [[nodiscard]] bool all_finished() const;
  [[nodiscard]] bool any_failed() const;
  [[nodiscard]] const std::map<std::int64_t, WatchedJob>& jobs() const { return jobs_; }

  /// One line per job: name, state, a bar, epoch x/y, step x/y, loss, sparkline, ETA.
  [[nodiscard]] std::vector<std::string> render_bars(std::size_t width) const;
  /// The plain line for `message` if it is worth a line when not on a terminal: every state
  /// change, and each job's progress every tenth of its run. Empty otherwise.
  [[nodiscard]] std::string plain_line(const boost::json::object& message);
  /// "3 jobs: 2 complete, 1 failed (crashed)".
  [[nodiscard]] std::string summary() const;

 private:
  std::map<std::int64_t, WatchedJob> jobs_;
  std::map<std::int64_t, std::uint64_t> logged_decile_;
};

/// "▁▂▃▅▇" from values (scaled between their min and max); NaN shows as '!'.
[[nodiscard]] std::string sparkline(const std::deque<double>& values);
/// "1h02m", "3m05s", "42s"; "?" when unknown.
[[nodiscard]] std::string format_eta(std::optional<double> seconds);

}  // namespace vapor::cli
