#include "http/job_list.hpp"

#include <cmath>

#include <boost/json/serialize.hpp>

#include "http/json_codec.hpp"
#include "runtime/scheduler.hpp"

namespace vapor::http {

namespace {

/// The same ETA, NaN included (an estimate that is NaN twice has not moved).
bool same_eta(const std::optional<double>& a, const std::optional<double>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return *a == *b || (std::isnan(*a) && std::isnan(*b));
}

}  // namespace

std::string JobListCache::array(const std::map<core::JobId, runtime::Job>& jobs) {
  // Forget jobs that have left the scheduler.
  if (entries_.size() > jobs.size()) {
    std::erase_if(entries_, [&](const auto& entry) { return !jobs.contains(entry.first); });
  }
  std::size_t bytes = 2;
  for (const auto& [id, job] : jobs) {
    auto& entry = entries_[id];
    const auto eta = job.eta_seconds();
    if (entry.json.empty() || entry.step != job.step || entry.state != job.state ||
        !same_eta(entry.eta_seconds, eta)) {
      entry.step = job.step;
      entry.state = job.state;
      entry.eta_seconds = eta;
      entry.json = boost::json::serialize(job_summary(job));
    }
    bytes += entry.json.size() + 1;
  }
  std::string out;
  out.reserve(bytes);
  out.push_back('[');
  for (const auto& [id, job] : jobs) {
    if (out.size() > 1) out.push_back(',');
    out.append(entries_.find(id)->second.json);
  }
  out.push_back(']');
  return out;
}

}  // namespace vapor::http
