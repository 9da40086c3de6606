#pragma once

// The rows a store holds until its next commit, indexed by job so that a history read touches
// only its own job's rows, and the pure merging that puts them together with committed ones.

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/job_events.hpp"
#include "store/job_history.hpp"

namespace vapor::store::detail {

struct PendingPoint {
  std::uint64_t step;
  std::uint64_t epoch;
  double loss;
  double accuracy;
  std::int64_t ts_millis;
  core::Scalars scalars;
};

struct PendingTransition {
  core::JobId job_id;
  core::JobState from;
  core::JobState to;
  std::string reason;
  std::int64_t ts_millis;
  std::uint64_t step;
};

/// Points by job (each job's in the order recorded) and transitions in the order they happened.
class PendingRows {
 public:
  void add_point(const core::StepRecorded& event);
  void add_transition(const core::JobStateChanged& event);
  void add_start_request(core::JobId job_id);
  /// Appends rows recorded after these (taken over whole when this holds none).
  void append(PendingRows&& later);

  [[nodiscard]] std::size_t point_count() const { return point_count_; }
  [[nodiscard]] std::size_t row_count() const {
    return point_count_ + transitions_.size() + start_requests_.size();
  }
  [[nodiscard]] const std::unordered_map<core::JobId, std::vector<PendingPoint>>& points() const {
    return points_;
  }
  [[nodiscard]] const std::vector<PendingTransition>& transitions() const { return transitions_; }
  /// Manual jobs a user started that wait for a slot, in the order they were started.
  [[nodiscard]] const std::vector<core::JobId>& start_requests() const { return start_requests_; }

  /// The buffered points of `job_id` with `after_step` < step <= `up_to_step`, ascending by
  /// step; of a step recorded twice, the later recording (the one a commit's REPLACE keeps).
  [[nodiscard]] std::vector<StoredPoint> points_of(core::JobId job_id, std::uint64_t after_step,
                                                   std::uint64_t up_to_step) const;
  /// The buffered transitions of `job_id`, in order.
  [[nodiscard]] std::vector<StoredTransition> transitions_of(core::JobId job_id) const;

  /// Empties the buffer after a commit (or a permanent failure). A large backlog's memory is
  /// given back, so that one backlog does not pin its peak for the rest of the process's life.
  void clear();

 private:
  std::unordered_map<core::JobId, std::vector<PendingPoint>> points_;
  std::vector<PendingTransition> transitions_;
  std::vector<core::JobId> start_requests_;
  std::size_t point_count_ = 0;
};

/// Two ascending point lists as one, ascending and without duplicate steps (`buffered` wins a
/// tie), cut at `limit`.
[[nodiscard]] std::vector<StoredPoint> merge_points(std::vector<StoredPoint> committed,
                                                    const std::vector<StoredPoint>& buffered,
                                                    std::size_t limit);

/// Keeps the lowest- and highest-loss point of each bucket of `points` (ascending by step),
/// ascending and without duplicates. Buckets are `width` steps wide starting after `after_step`.
/// NaN ranks above every number for the maximum and never wins the minimum unless alone.
[[nodiscard]] std::vector<StoredPoint> extremes_per_bucket(const std::vector<StoredPoint>& points,
                                                           std::uint64_t after_step,
                                                           std::uint64_t width);

}  // namespace vapor::store::detail
