#pragma once

// The SQL of the store and its prepared statements, kept for the store's whole life.

#include "store/sqlite_database.hpp"
#include "support/result.hpp"

namespace vapor::store::detail {

/// The statements a store reuses for its whole life.
struct CachedStatements {
  Statement insert_job;
  Statement upsert_point;
  Statement insert_transition;
  Statement apply_transition;
  Statement update_step;
  Statement select_jobs;
  Statement select_points;
  Statement select_points_downsampled;
  Statement select_transitions;
  Statement select_prunable_job;
  Statement prune_points;
  Statement request_start;

  static Result<CachedStatements> prepare(Database& db);
};

/// Resets a statement when a read loop ends, however it ends.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement& statement) : statement_(statement) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() { statement_.reset(); }

 private:
  Statement& statement_;
};

}  // namespace vapor::store::detail
