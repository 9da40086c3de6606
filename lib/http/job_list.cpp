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

void JobListCache::append_array(std::string& out,
                                const std::map<core::JobId, runtime::Job>& jobs) {
  // Forget jobs that have left the scheduler.
  if (entries_.size() > jobs.size()) {
    std::erase_if(entries_, [&](const auto& entry) { return !jobs.contains(entry.first); });
  }
  out.reserve(out.size() + last_array_bytes_ + last_array_bytes_ / 8);
  const auto start = out.size();
  out.push_back('[');
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
    if (out.size() > start + 1) out.push_back(',');
    out.append(entry.json);
  }
  out.push_back(']');
  last_array_bytes_ = out.size() - start;
}

}  // namespace vapor::http
