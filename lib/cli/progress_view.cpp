#include "cli/progress_view.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace vapor::cli {
namespace {

std::optional<double> number(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    // A non-finite number travels as null plus a "<key>_nonfinite" flag.
    const auto* flag = object.if_contains(std::string(key) + "_nonfinite");
    if (flag != nullptr && flag->is_string()) {
      const auto text = flag->get_string();
      if (text == "inf") return INFINITY;
      if (text == "-inf") return -INFINITY;
      return NAN;
    }
    return std::nullopt;
  }
  if (value->is_double()) return value->get_double();
  if (value->is_int64()) return static_cast<double>(value->get_int64());
  if (value->is_uint64()) return static_cast<double>(value->get_uint64());
  return std::nullopt;
}

std::uint64_t count(const boost::json::object& object, std::string_view key) {
  const auto value = number(object, key);
  return value && *value > 0 ? static_cast<std::uint64_t>(*value) : 0;
}

std::string text(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

bool terminal(const std::string& state) {
  return state == "complete" || state == "failed" || state == "stopped";
}

std::string format_loss(const std::optional<double>& loss) {
  if (!loss) return "-";
  if (std::isnan(*loss)) return "NaN";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", *loss);
  return buffer;
}

double progress_of(const WatchedJob& job) {
  return job.steps == 0 ? 0.0 : static_cast<double>(job.step) / static_cast<double>(job.steps);
}

}  // namespace

std::string sparkline(const std::deque<double>& values) {
  static const char* const blocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double low = INFINITY;
  double high = -INFINITY;
  for (const double v : values) {
    if (std::isfinite(v)) {
      low = std::min(low, v);
      high = std::max(high, v);
    }
  }
  std::string out;
  for (const double v : values) {
    if (!std::isfinite(v)) {
      out += '!';
      continue;
    }
    const double span = high - low;
    const auto level = span <= 0 ? 0L : std::lround((v - low) / span * 7.0);
    out += blocks[std::clamp(level, 0L, 7L)];
  }
  return out;
}

std::string format_eta(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(*seconds));
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", total / 3600, (total % 3600) / 60);
  } else if (total >= 60) {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%llds", total);
  }
  return buffer;
}

void ProgressView::add_job(const boost::json::object& summary) {
  WatchedJob job;
  job.id = static_cast<std::int64_t>(count(summary, "id"));
  job.name = text(summary, "name");
  job.state = text(summary, "state");
  job.reason = text(summary, "reason");
  job.step = count(summary, "step");
  job.steps = count(summary, "steps");
  job.epoch = count(summary, "epoch");
  job.epochs = count(summary, "epochs");
  job.loss = number(summary, "loss");
  job.eta_seconds = number(summary, "eta_seconds");
  jobs_[job.id] = std::move(job);
}

bool ProgressView::apply(const boost::json::object& message) {
  const auto id = static_cast<std::int64_t>(count(message, "job_id"));
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return false;
  WatchedJob& job = it->second;
  const auto type = text(message, "type");
  if (type == "point") {
    job.step = count(message, "step");
    job.epoch = count(message, "epoch");
    job.loss = number(message, "loss");
    job.eta_seconds = number(message, "eta_seconds");
    if (job.loss) {
      job.recent_losses.push_back(*job.loss);
      if (job.recent_losses.size() > sparkline_width) job.recent_losses.pop_front();
    }
    if (job.state == "queued") job.state = "running";
    return true;
  }
  if (type == "state") {
    job.state = text(message, "to");
    job.reason = text(message, "reason");
    if (terminal(job.state)) job.eta_seconds.reset();
    return true;
  }
  return false;
}

bool ProgressView::all_finished() const {
  return std::all_of(jobs_.begin(), jobs_.end(),
                     [](const auto& entry) { return terminal(entry.second.state); });
}

bool ProgressView::any_failed() const {
  return std::any_of(jobs_.begin(), jobs_.end(),
                     [](const auto& entry) { return entry.second.state == "failed"; });
}

std::vector<std::string> ProgressView::render_bars(std::size_t width) const {
  std::size_t name_width = 4;
  for (const auto& [id, job] : jobs_) name_width = std::max(name_width, std::min<std::size_t>(job.name.size(), 28));
  const std::size_t bar_width = width > 100 ? 30 : 20;
  std::vector<std::string> lines;
  for (const auto& [id, job] : jobs_) {
    const double progress = std::clamp(progress_of(job), 0.0, 1.0);
    const auto filled = static_cast<std::size_t>(std::lround(progress * static_cast<double>(bar_width)));
    std::string bar;
    for (std::size_t i = 0; i < bar_width; ++i) bar += i < filled ? "█" : "░";
    const char* colour = job.state == "running"    ? "\x1b[34m"
                         : job.state == "complete" ? "\x1b[32m"
                         : job.state == "failed"   ? "\x1b[31m"
                         : job.state == "stopped"  ? "\x1b[33m"
                                                   : "\x1b[90m";
    char head[256];
    std::snprintf(head, sizeof head, "%-*.*s %s%-8s\x1b[0m %s %3.0f%% ep %llu/%llu step %llu/%llu",
                  static_cast<int>(name_width), static_cast<int>(name_width), job.name.c_str(),
                  colour, job.state.c_str(), bar.c_str(), progress * 100.0,
                  static_cast<unsigned long long>(job.epoch), static_cast<unsigned long long>(job.epochs),
                  static_cast<unsigned long long>(job.step), static_cast<unsigned long long>(job.steps));
    std::string line = head;
    line += " loss " + format_loss(job.loss) + " " + sparkline(job.recent_losses);
    if (job.state == "failed") {
      line += " (" + job.reason + ")";
    } else if (!terminal(job.state)) {
      line += " eta " + format_eta(job.eta_seconds);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string ProgressView::plain_line(const boost::json::object& message) {
  const auto id = static_cast<std::int64_t>(count(message, "job_id"));
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return {};
  const WatchedJob& job = it->second;
  const auto type = text(message, "type");
  char buffer[256];
  if (type == "state") {
    std::snprintf(buffer, sizeof buffer, "%s: %s -> %s%s%s", job.name.c_str(),
                  text(message, "from").c_str(), job.state.c_str(),
                  job.reason.empty() ? "" : " reason ", job.reason.c_str());
    return buffer;
  }
  if (type != "point") return {};
  const auto decile = static_cast<std::uint64_t>(std::floor(progress_of(job) * 10.0));
  auto [logged, first] = logged_decile_.try_emplace(id, decile);
  if (!first && decile <= logged->second) return {};
  logged->second = decile;
  std::snprintf(buffer, sizeof buffer, "%s: step %llu/%llu (%.0f%%) epoch %llu/%llu loss %s eta %s",
                job.name.c_str(), static_cast<unsigned long long>(job.step),
                static_cast<unsigned long long>(job.steps), progress_of(job) * 100.0,
                static_cast<unsigned long long>(job.epoch), static_cast<unsigned long long>(job.epochs),
                format_loss(job.loss).c_str(), format_eta(job.eta_seconds).c_str());
  return buffer;
}

std::string ProgressView::summary() const {
  std::map<std::string, int> by_state;
  std::vector<std::string> reasons;
  for (const auto& [id, job] : jobs_) {
    ++by_state[job.state];
    if (job.state == "failed") reasons.push_back(job.name + ": " + job.reason);
  }
  std::string out = std::to_string(jobs_.size()) + (jobs_.size() == 1 ? " job:" : " jobs:");
  bool first = true;
  for (const auto& [state, n] : by_state) {
    out += (first ? " " : ", ") + std::to_string(n) + " " + state;
    first = false;
  }
  for (const auto& reason : reasons) out += "\n  failed " + reason;
  return out;
}

}  // namespace vapor::cli
