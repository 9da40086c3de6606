#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/job_events.hpp"
#include "core/job_state.hpp"
#include "store/job_history.hpp"
#include "store/schema.hpp"
#include "store/sqlite_database.hpp"
#include "support/result.hpp"

namespace vapor::store {
namespace detail {
class PendingRows;
}

/// SQLite's `PRAGMA synchronous` level.
enum class Synchronous { off, normal, full, extra };

struct StoreOptions {
  std::filesystem::path path;  ///< a file path, or ":memory:"
  Synchronous synchronous = Synchronous::normal;
  std::chrono::milliseconds busy_timeout{250};
  std::size_t max_pending_rows = 1'000'000;
  std::size_t cache_bytes = 64 * 1024 * 1024;  ///< SQLite page cache (PRAGMA cache_size)
};

/// A job row as stored: the spec is kept as the JSON text the caller gave.
struct StoredJob {
  core::JobId id = 0;
  std::string name;
  std::string spec_json;
  core::JobState state = core::JobState::queued;
  std::string reason;
  std::uint64_t step = 0;  ///< last committed step (0: none)
  core::WallTime created_at;
  std::optional<core::WallTime> started_at;
  std::optional<core::WallTime> finished_at;
  std::string push_token_sha256;  ///< a push job created over the API: its token's hash
  core::Scalars scalars;          ///< a real job's latest value of each named scalar
  bool start_requested = false;   ///< a manual job a user started, still waiting for a slot
};

/// A new job to persist (inserted in the next flush, before any of its points).
struct NewJob {
  core::JobId id = 0;
  std::string name;
  std::string spec_json;
  core::WallTime created_at;
  std::string push_token_sha256{};  ///< empty: no token of its own
};

/// Outcome of one flush.
struct FlushStats {
  std::size_t points = 0;
  std::size_t transitions = 0;
  std::size_t jobs = 0;
  std::chrono::nanoseconds duration{0};
};

/// What a failed commit means for the next one.
enum class FailureKind {
  transient,  ///< busy, locked, disk full, I/O error: the rows are kept and the commit retried
  permanent,  ///< constraint, corruption, read-only or replaced file: retrying cannot succeed
};

/// Outcome of one retention pass (`prune_points`).
struct PruneStats {
  std::size_t points = 0;  ///< points deleted
  core::JobId job_id = 0;  ///< the job they belonged to (0: nothing was left to delete)
};

/// Persists jobs, points and state transitions in one SQLite file (WAL mode).
/// Writes are buffered in memory and committed by `flush()`, one transaction carrying every row
/// since the last flush; a failed flush rolls back and keeps the rows for the next one.
/// Not thread-safe: one owner thread calls everything (in the daemon, the store thread; see
/// StoreThread).
class SqliteJobStore final : public core::JobEventListener {
 public:
  /// Opens (or creates) the database, checks its integrity and migrates its schema.
  /// A corrupt, unreadable or newer-than-supported file is an error; it is never overwritten.
  static Result<std::unique_ptr<SqliteJobStore>> open(const StoreOptions& options);

  /// Does not flush: rows still buffered are dropped, so owners call `flush()` before.
  ~SqliteJobStore() override;

  void add_job(const NewJob& job);
  /// Takes over rows buffered elsewhere (the store thread's hand-over from the loop), as if
  /// each had been added in order after those already held.
  void add_rows(std::vector<NewJob> jobs, detail::PendingRows rows);
  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged& event) override;
  void on_start_requested(core::JobId job_id) override;

  /// Calls sched_yield() every `instructions` SQLite VM instructions of any statement (0: never),
  /// so that a long query lets other threads of the process (the event loop) run on a shared
  /// CPU. Call from the thread that uses the store.
  void yield_during_statements(int instructions);

  /// Commits everything buffered. On error nothing is lost: the rows stay buffered, and
  /// `last_failure_kind()` says whether another attempt can succeed.
  Result<FlushStats> flush();
  /// The kind of the last failed flush (transient when none failed).
  [[nodiscard]] FailureKind last_failure_kind() const;
  /// Drops every buffered row (after a permanent failure); returns how many there were.
  std::size_t discard_pending();

  /// Retention: deletes up to `max_rows` points, the oldest steps first, of one job that
  /// finished before `finished_before`, in one short transaction. The job row and its
  /// transitions stay. Returns 0 points when no such job has points left.
  Result<PruneStats> prune_points(core::WallTime finished_before, std::size_t max_rows);

  [[nodiscard]] std::size_t pending_rows() const;
  /// True when the buffer has reached `max_pending_rows` (producers should pause).
  [[nodiscard]] bool backlogged() const;

  /// Every job row as last committed, by id. Jobs and transitions still buffered are not
  /// reflected (this is what start-up restores from).
  Result<std::vector<StoredJob>> load_jobs();

  /// Up to `limit` points of a job with step > `after_step`, ascending by step. Sees committed
  /// rows and the points still buffered for the next flush, merged without duplicates: a
  /// buffered point replaces a committed one of the same step (as the flush will).
  Result<std::vector<StoredPoint>> load_points(core::JobId job_id, std::uint64_t after_step,
                                               std::size_t limit);

  /// The points with `after_step` < step <= `up_to_step`, reduced to at most `max_points` (>= 2):
  /// the range is cut into `max_points / 2` buckets of equal step width and each bucket keeps
  /// its lowest-loss and highest-loss point (one point when they are the same), so spikes
  /// survive. A NaN loss counts as the highest, so a non-finite point is never dropped in favour
  /// of a finite one. Ascending by step, no duplicates. When the range holds no more than
  /// `max_points` steps every point is returned. Sees committed and buffered points like
  /// `load_points`; the bucket extremes are found in SQL, one indexed range scan per bucket.
  Result<std::vector<StoredPoint>> load_points_downsampled(core::JobId job_id,
                                                           std::uint64_t after_step,
                                                           std::uint64_t up_to_step,
                                                           std::size_t max_points);

  /// A job's state transitions in the order they happened: committed ones, then those still
  /// buffered for the next flush.
  Result<std::vector<StoredTransition>> load_transitions(core::JobId job_id);

 private:
  struct Impl;
  explicit SqliteJobStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vapor::store
