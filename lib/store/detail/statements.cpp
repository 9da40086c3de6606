#include "store/detail/statements.hpp"

#include <string_view>
#include <utility>

namespace vapor::store::detail {
namespace {

constexpr std::string_view insert_job_sql =
    "INSERT INTO jobs(id, name, spec_json, created_at, push_token_sha256)"
    " VALUES(?1, ?2, ?3, ?4, ?5)";
// REPLACE: a step re-run after a crash overwrites its point instead of failing or duplicating.
constexpr std::string_view upsert_point_sql =
    "INSERT OR REPLACE INTO points(job_id, step, epoch, loss, accuracy, ts, scalars)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view insert_transition_sql =
    "INSERT INTO transitions(job_id, from_state, to_state, reason, ts, step)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
constexpr std::string_view apply_transition_sql =
    "UPDATE jobs SET state = ?2, reason = ?3,"
    " started_at = CASE WHEN ?2 = 'running' THEN coalesce(started_at, ?4) ELSE started_at END,"
    " finished_at = CASE WHEN ?5 THEN ?4 ELSE finished_at END,"
    " start_requested = CASE WHEN ?2 = 'queued' THEN start_requested ELSE 0 END"
    " WHERE id = ?1";
// ?3: the batch's latest value of each named scalar (NULL: none), patched over the row's.
// A manual job's start survives a restart until the job leaves the queue (apply_transition).
constexpr std::string_view request_start_sql =
    "UPDATE jobs SET start_requested = 1 WHERE id = ?1 AND state = 'queued'";
constexpr std::string_view update_step_sql =
    "UPDATE jobs SET step = max(step, ?2),"
    " scalars = CASE WHEN ?3 IS NULL THEN scalars"
    "           ELSE json_patch(coalesce(scalars, '{}'), ?3) END"
    " WHERE id = ?1";
constexpr std::string_view select_jobs_sql =
    "SELECT id, name, spec_json, state, reason, step, created_at, started_at, finished_at,"
    " push_token_sha256, scalars, start_requested FROM jobs ORDER BY id";
constexpr std::string_view select_points_sql =
    "SELECT step, epoch, loss, accuracy, ts, scalars FROM points"
    " WHERE job_id = ?1 AND step > ?2 ORDER BY step LIMIT ?3";
// Downsampling: ?1 job, ?2 after_step, ?3 up_to_step, ?4 bucket width in steps. `buckets` counts
// off the lower bound of each bucket; for each one a correlated subquery scans that bucket's step
// range on the primary key and keeps the step of its min (then max) loss. SQLite documents that a
// bare column next to a lone min()/max() comes from the row holding that extreme; min() skips
// NULL (NaN) losses, and max() ranks them as +inf through ifnull so a NaN point survives. UNION
// drops the step of a bucket whose min and max are one row, and the NULL of an empty bucket
// matches nothing in the join. One range scan per bucket avoids the temp B-tree (a sort of
// every row) that a GROUP BY over a computed bucket would need: about 4x faster on 1M points.
constexpr std::string_view select_points_downsampled_sql =
    "WITH RECURSIVE buckets(low) AS ("
    "  SELECT ?2 UNION ALL SELECT low + ?4 FROM buckets WHERE low + ?4 < ?3),"
    " picked(step) AS ("
    "  SELECT (SELECT step FROM (SELECT min(loss), step FROM points"
    "          WHERE job_id = ?1 AND step > low AND step <= min(low + ?4, ?3))) FROM buckets"
    "  UNION"
    "  SELECT (SELECT step FROM (SELECT max(ifnull(loss, 9e999)), step FROM points"
    "          WHERE job_id = ?1 AND step > low AND step <= min(low + ?4, ?3))) FROM buckets)"
    " SELECT p.step, p.epoch, p.loss, p.accuracy, p.ts, p.scalars"
    " FROM picked JOIN points AS p ON p.job_id = ?1 AND p.step = picked.step"
    " ORDER BY p.step";
constexpr std::string_view select_prunable_job_sql =
    "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1"
    " AND EXISTS (SELECT 1 FROM points WHERE job_id = jobs.id) ORDER BY id LIMIT 1";
// The oldest steps first, on the primary key: a pass never sorts more than `?2` rows.
constexpr std::string_view prune_points_sql =
    "DELETE FROM points WHERE job_id = ?1 AND step IN"
    " (SELECT step FROM points WHERE job_id = ?1 ORDER BY step LIMIT ?2)";
constexpr std::string_view select_transitions_sql =
    "SELECT from_state, to_state, reason, ts, step FROM transitions WHERE job_id = ?1 ORDER BY id";

}  // namespace

Result<CachedStatements> CachedStatements::prepare(Database& db) {
  auto insert_job = Statement::prepare(db, insert_job_sql);
  if (!insert_job) return insert_job.error();
  auto upsert_point = Statement::prepare(db, upsert_point_sql);
  if (!upsert_point) return upsert_point.error();
  auto insert_transition = Statement::prepare(db, insert_transition_sql);
  if (!insert_transition) return insert_transition.error();
  auto apply_transition = Statement::prepare(db, apply_transition_sql);
  if (!apply_transition) return apply_transition.error();
  auto update_step = Statement::prepare(db, update_step_sql);
  if (!update_step) return update_step.error();
  auto select_jobs = Statement::prepare(db, select_jobs_sql);
  if (!select_jobs) return select_jobs.error();
  auto select_points = Statement::prepare(db, select_points_sql);
  if (!select_points) return select_points.error();
  auto select_points_downsampled = Statement::prepare(db, select_points_downsampled_sql);
  if (!select_points_downsampled) return select_points_downsampled.error();
  auto select_transitions = Statement::prepare(db, select_transitions_sql);
  if (!select_transitions) return select_transitions.error();
  auto select_prunable_job = Statement::prepare(db, select_prunable_job_sql);
  if (!select_prunable_job) return select_prunable_job.error();
  auto prune_points = Statement::prepare(db, prune_points_sql);
  if (!prune_points) return prune_points.error();
  auto request_start = Statement::prepare(db, request_start_sql);
  if (!request_start) return request_start.error();
  return CachedStatements{std::move(*insert_job),
                          std::move(*upsert_point),
                          std::move(*insert_transition),
                          std::move(*apply_transition),
                          std::move(*update_step),
                          std::move(*select_jobs),
                          std::move(*select_points),
                          std::move(*select_points_downsampled),
                          std::move(*select_transitions),
                          std::move(*select_prunable_job),
                          std::move(*prune_points),
                          std::move(*request_start)};
}

}  // namespace vapor::store::detail
