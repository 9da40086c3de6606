#include "store/detail/pending_rows.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

#include "store/detail/sql_values.hpp"

namespace vapor::store::detail {
namespace {

/// Above this many buffered points of one job its vector's memory is given back at `clear()`.
constexpr std::size_t retained_point_capacity = 65'536;

/// Orders losses for the downsampling's minimum: NaN never wins unless nothing else is there.
bool lower_loss(double a, double b) {
  if (std::isnan(b)) return !std::isnan(a);
  return !std::isnan(a) && a < b;
}

/// Orders losses for the downsampling's maximum: NaN ranks with +inf, above every number.
bool higher_loss(double a, double b) {
  const double infinity = std::numeric_limits<double>::infinity();
  return (std::isnan(a) ? infinity : a) > (std::isnan(b) ? infinity : b);
}

}  // namespace

void PendingRows::add_point(const core::StepRecorded& event) {
  points_[event.job_id].push_back(
      PendingPoint{event.step, event.epoch, event.loss, event.accuracy, to_millis(event.ts),
                   event.scalars});
  ++point_count_;
}

void PendingRows::add_transition(const core::JobStateChanged& event) {
  transitions_.push_back(
      PendingTransition{event.job_id, event.from, event.to, event.reason, to_millis(event.ts),
                        event.step});
}

void PendingRows::add_start_request(core::JobId job_id) { start_requests_.push_back(job_id); }

void PendingRows::append(PendingRows&& later) {
  if (row_count() == 0) {
    *this = std::move(later);
    return;
  }
  for (auto& [job_id, points] : later.points_) {
    auto& mine = points_[job_id];
    mine.insert(mine.end(), points.begin(), points.end());
  }
  transitions_.insert(transitions_.end(), std::make_move_iterator(later.transitions_.begin()),
                      std::make_move_iterator(later.transitions_.end()));
  start_requests_.insert(start_requests_.end(), later.start_requests_.begin(),
                         later.start_requests_.end());
  point_count_ += later.point_count_;
  later = PendingRows{};
}

std::vector<StoredPoint> PendingRows::points_of(core::JobId job_id, std::uint64_t after_step,
                                                std::uint64_t up_to_step) const {
  std::vector<StoredPoint> points;
  const auto found = points_.find(job_id);
  if (found == points_.end()) return points;
  for (const PendingPoint& pending : found->second) {
    if (pending.step > after_step && pending.step <= up_to_step) {
      points.push_back(StoredPoint{job_id, pending.step, pending.epoch, pending.loss,
                                   pending.accuracy, from_millis(pending.ts_millis),
                                   pending.scalars});
    }
  }
  // Stable: equal steps keep recording order, so the last of each run is the latest recording.
  // Steps usually arrive ascending, and then there is nothing to sort.
  const auto by_step = [](const StoredPoint& a, const StoredPoint& b) { return a.step < b.step; };
  if (!std::is_sorted(points.begin(), points.end(), by_step)) {
    std::stable_sort(points.begin(), points.end(), by_step);
  }
  std::vector<StoredPoint> unique;
  unique.reserve(points.size());
  for (const StoredPoint& point : points) {
    if (!unique.empty() && unique.back().step == point.step) {
      unique.back() = point;
    } else {
      unique.push_back(point);
    }
  }
  return unique;
}

std::vector<StoredTransition> PendingRows::transitions_of(core::JobId job_id) const {
  std::vector<StoredTransition> transitions;
  for (const PendingTransition& pending : transitions_) {
    if (pending.job_id != job_id) continue;
    transitions.push_back(StoredTransition{job_id, pending.from, pending.to, pending.reason,
                                           from_millis(pending.ts_millis), pending.step});
  }
  return transitions;
}

void PendingRows::clear() {
  // Jobs that stopped stepping leave the map; the others keep their vectors' memory for the
  // next batch unless a backlog made them large.
  for (auto entry = points_.begin(); entry != points_.end();) {
    if (entry->second.empty() || entry->second.capacity() > retained_point_capacity) {
      entry = points_.erase(entry);
    } else {
      entry->second.clear();
      ++entry;
    }
  }
  transitions_.clear();
  start_requests_.clear();
  point_count_ = 0;
}

std::vector<StoredPoint> merge_points(std::vector<StoredPoint> committed,
                                      const std::vector<StoredPoint>& buffered,
                                      std::size_t limit) {
  if (buffered.empty()) {
    if (committed.size() > limit) committed.resize(limit);
    return committed;
  }
  std::vector<StoredPoint> merged;
  merged.reserve(std::min(limit, committed.size() + buffered.size()));
  auto from_store = committed.begin();
  auto from_buffer = buffered.begin();
  while (merged.size() < limit &&
         (from_store != committed.end() || from_buffer != buffered.end())) {
    if (from_buffer == buffered.end() ||
        (from_store != committed.end() && from_store->step < from_buffer->step)) {
      merged.push_back(*from_store++);
      continue;
    }
    if (from_store != committed.end() && from_store->step == from_buffer->step) ++from_store;
    merged.push_back(*from_buffer++);
  }
  return merged;
}

std::vector<StoredPoint> extremes_per_bucket(const std::vector<StoredPoint>& points,
                                             std::uint64_t after_step, std::uint64_t width) {
  std::vector<StoredPoint> kept;
  std::size_t begin = 0;
  while (begin < points.size()) {
    const std::uint64_t bucket = (points[begin].step - after_step - 1) / width;
    std::size_t end = begin;
    std::size_t lowest = begin;
    std::size_t highest = begin;
    while (end < points.size() && (points[end].step - after_step - 1) / width == bucket) {
      if (lower_loss(points[end].loss, points[lowest].loss)) lowest = end;
      if (higher_loss(points[end].loss, points[highest].loss)) highest = end;
      ++end;
    }
    kept.push_back(points[std::min(lowest, highest)]);
    if (lowest != highest) kept.push_back(points[std::max(lowest, highest)]);
    begin = end;
  }
  return kept;
}

}  // namespace vapor::store::detail
