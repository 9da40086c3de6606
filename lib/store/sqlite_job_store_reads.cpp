// SqliteJobStore's reads: the jobs at start-up, and a job's points (whole or downsampled) and
// state transitions, committed rows merged with those still buffered.

#include <sqlite3.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <string>
#include <utility>

#include "store/detail/scalars_column.hpp"
#include "store/detail/sql_values.hpp"
#include "store/detail/store_impl.hpp"

namespace vapor::store {
namespace {

using detail::decode_scalars;
using detail::extremes_per_bucket;
using detail::from_millis;
using detail::from_sql_uint;
using detail::merge_points;
using detail::ResetOnExit;
using detail::to_sql_int;
using detail::while_doing;

}  // namespace

Result<std::vector<StoredJob>> SqliteJobStore::load_jobs() {
  Statement& select = impl_->statements->select_jobs;
  const ResetOnExit reset(select);
  std::vector<StoredJob> jobs;
  for (;;) {
    auto row = select.step();
    if (!row) return while_doing(row.error(), "reading jobs");
    if (!*row) break;
    StoredJob job;
    job.id = select.column_int(0);
    job.name = select.column_text(1);
    job.spec_json = select.column_text(2);
    const std::string state = select.column_text(3);
    const auto parsed = core::parse_job_state(state);
    if (!parsed) {
      return fail(impl_->db.name() + ": job " + std::to_string(job.id) +
                  " has an unknown state \"" + state + "\"");
    }
    job.state = *parsed;
    job.reason = select.column_text(4);
    job.step = from_sql_uint(select.column_int(5));
    job.created_at = from_millis(select.column_int(6));
    if (!select.column_is_null(7)) job.started_at = from_millis(select.column_int(7));
    if (!select.column_is_null(8)) job.finished_at = from_millis(select.column_int(8));
    if (!select.column_is_null(9)) job.push_token_sha256 = select.column_text(9);
    job.start_requested = select.column_int(11) != 0;
    if (!select.column_is_null(10)) {
      auto scalars = decode_scalars(select.column_text(10));
      if (!scalars) {
        return while_doing(scalars.error(), "reading job " + std::to_string(job.id));
      }
      job.scalars = std::move(*scalars);
    }
    jobs.push_back(std::move(job));
  }
  return jobs;
}

namespace {

/// Reads the rows of a points query (columns step, epoch, loss, accuracy, ts, scalars).
Result<std::vector<StoredPoint>> read_points(Statement& select, core::JobId job_id) {
  std::vector<StoredPoint> points;
  for (;;) {
    auto row = select.step();
    if (!row) {
      return while_doing(row.error(), "reading the points of job " + std::to_string(job_id));
    }
    if (!*row) break;
    StoredPoint point;
    point.job_id = job_id;
    point.step = from_sql_uint(select.column_int(0));
    point.epoch = from_sql_uint(select.column_int(1));
    point.loss = select.column_double(2);  // NULL (a NaN loss) reads back as NaN
    point.accuracy = select.column_double(3);
    point.ts = from_millis(select.column_int(4));
    if (!select.column_is_null(5)) {
      auto scalars = decode_scalars(select.column_text(5));
      if (!scalars) {
        return while_doing(scalars.error(), "reading job " + std::to_string(job_id) + " step " +
                                                std::to_string(point.step));
      }
      point.scalars = std::move(*scalars);
    }
    points.push_back(std::move(point));
  }
  return points;
}

}  // namespace

Result<std::vector<StoredPoint>> SqliteJobStore::load_points(core::JobId job_id,
                                                             std::uint64_t after_step,
                                                             std::size_t limit) {
  if (limit == 0) return std::vector<StoredPoint>{};
  Statement& select = impl_->statements->select_points;
  const ResetOnExit reset(select);
  select.bind(1, job_id);
  select.bind(2, to_sql_int(after_step));
  select.bind(3, to_sql_int(limit));
  auto committed = read_points(select, job_id);
  if (!committed) return committed.error();
  return merge_points(std::move(*committed),
                      impl_->pending.points_of(job_id, after_step,
                                              std::numeric_limits<std::uint64_t>::max()),
                      limit);
}

Result<std::vector<StoredPoint>> SqliteJobStore::load_points_downsampled(
    core::JobId job_id, std::uint64_t after_step, std::uint64_t up_to_step,
    std::size_t max_points) {
  if (max_points < 2) {
    return fail("cannot downsample the points of job " + std::to_string(job_id) + " to " +
                std::to_string(max_points) + " points; at least 2 are needed");
  }
  // Steps are stored as SQLite integers (int64): cap the range there so its arithmetic holds.
  const auto max_step = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  up_to_step = std::min(up_to_step, max_step);
  if (up_to_step <= after_step) return std::vector<StoredPoint>{};
  const std::uint64_t span = up_to_step - after_step;
  if (span <= max_points) {
    // Few enough steps to send them all (steps are unique, so at most `span` points).
    auto all = load_points(job_id, after_step, static_cast<std::size_t>(span));
    if (!all) return all.error();
    std::erase_if(*all, [&](const StoredPoint& point) { return point.step > up_to_step; });
    return all;
  }

  const std::uint64_t buckets = max_points / 2;
  const std::uint64_t width = span / buckets + (span % buckets != 0 ? 1 : 0);
  Statement& select = impl_->statements->select_points_downsampled;
  const ResetOnExit reset(select);
  select.bind(1, job_id);
  select.bind(2, to_sql_int(after_step));
  select.bind(3, to_sql_int(up_to_step));
  select.bind(4, to_sql_int(width));
  auto committed = read_points(select, job_id);
  if (!committed) return committed.error();

  const auto buffered = impl_->pending.points_of(job_id, after_step, up_to_step);
  if (buffered.empty()) return committed;
  // Buffered points join their buckets' committed extremes and each bucket picks again. A
  // committed extreme that a buffered point re-records is replaced by it; the simulation is
  // deterministic, so a re-recorded step carries the same loss and the pick stays exact.
  const std::size_t candidates = committed->size() + buffered.size();
  return extremes_per_bucket(merge_points(std::move(*committed), buffered, candidates),
                             after_step, width);
}

Result<std::vector<StoredTransition>> SqliteJobStore::load_transitions(core::JobId job_id) {
  Statement& select = impl_->statements->select_transitions;
  const ResetOnExit reset(select);
  select.bind(1, job_id);
  std::vector<StoredTransition> transitions;
  for (;;) {
    auto row = select.step();
    if (!row) {
      return while_doing(row.error(), "reading the transitions of job " + std::to_string(job_id));
    }
    if (!*row) break;
    const std::string from = select.column_text(0);
    const std::string to = select.column_text(1);
    const auto parsed_from = core::parse_job_state(from);
    const auto parsed_to = core::parse_job_state(to);
    if (!parsed_from || !parsed_to) {
      return fail(impl_->db.name() + ": job " + std::to_string(job_id) +
                  " has a transition with an unknown state (\"" + from + "\" to \"" + to + "\")");
    }
    StoredTransition transition;
    transition.job_id = job_id;
    transition.from = *parsed_from;
    transition.to = *parsed_to;
    transition.reason = select.column_text(2);
    transition.ts = from_millis(select.column_int(3));
    if (!select.column_is_null(4)) transition.step = from_sql_uint(select.column_int(4));
    transitions.push_back(std::move(transition));
  }
  auto buffered = impl_->pending.transitions_of(job_id);
  transitions.insert(transitions.end(), std::make_move_iterator(buffered.begin()),
                     std::make_move_iterator(buffered.end()));
  return transitions;
}

}  // namespace vapor::store
