#pragma once

// The store thread: SQLite off the event loop. The loop records rows here (they are buffered on
// the loop), hands them over in batches, and asks for commits, history reads and retention
// passes; each runs on the store thread, in the order asked, against the SqliteJobStore it owns,
// and its outcome is posted back to the loop. Nothing here waits on the disk on the loop.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "core/job_events.hpp"
#include "store/job_history.hpp"
#include "store/sqlite_job_store.hpp"
#include "support/result.hpp"

namespace vapor::store {

/// How one commit on the store thread went.
struct CommitOutcome {
  Result<FlushStats> result = FlushStats{};
  FailureKind kind = FailureKind::transient;  ///< of the failure, when `result` is one
  std::size_t rows_kept = 0;  ///< rows the store thread still holds (a failed commit keeps them)
  std::size_t rows_dropped = 0;  ///< rows dropped because the store has failed permanently
};

/// Owns a SqliteJobStore and the thread that runs it. Reads see every row recorded on the loop
/// before they were asked for: each request hands the loop's buffer over first, and the thread
/// serves requests in order, so committed rows, rows a failed commit kept and rows handed over
/// are all there. Completions run on the loop executor, never inside the call that asked; the
/// loop's io_context counts them as outstanding work, so it does not stop while one is due.
/// The public functions are for the loop thread only.
class StoreThread final : public core::JobEventListener, public JobHistory {
 public:
  /// Does not start the thread: until `start()`, `startup_store()` may be used directly (the
  /// daemon restores its jobs from it before it serves anything).
  StoreThread(const boost::asio::any_io_executor& loop, std::unique_ptr<SqliteJobStore> store,
              std::size_t max_pending_rows);
  /// Runs what was asked (the last commit included) and joins the thread.
  ~StoreThread() override;

  /// The store, for synchronous use before `start()` only.
  SqliteJobStore& startup_store();
  void start();
  /// Runs every request already made, then ends and joins the thread. Blocks: for shutdown.
  void stop();

  void add_job(const NewJob& job);
  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged& event) override;
  void on_start_requested(core::JobId job_id) override;

  /// Hands the buffer over and commits everything the store thread holds. After a permanent
  /// failure nothing is committed any more: rows are counted and dropped.
  void commit(std::function<void(CommitOutcome)> done);

  /// Rows recorded and not yet committed: the loop's buffer, those handed over since the last
  /// commit outcome, and those the last outcome said the store thread still holds.
  [[nodiscard]] std::size_t pending_rows() const;
  /// True when `pending_rows()` has reached `store.max_pending_rows` (producers should pause).
  [[nodiscard]] bool backlogged() const;

  /// Retention: one pass of `SqliteJobStore::prune_points` on the store thread.
  void prune(core::WallTime finished_before, std::size_t max_rows,
             std::function<void(Result<PruneStats>)> done);

  // JobHistory: read on the store thread, answered on the loop.
  void load_points(core::JobId job_id, std::uint64_t after_step, std::size_t limit,
                   Reply<std::vector<StoredPoint>> done) override;
  void load_points_downsampled(core::JobId job_id, std::uint64_t after_step,
                               std::uint64_t up_to_step, std::size_t max_points,
                               Reply<std::vector<StoredPoint>> done) override;
  void load_transitions(core::JobId job_id, Reply<std::vector<StoredTransition>> done) override;

  /// Runs `work` on the store thread with the store, then `done` on the loop (tests and tools
  /// that need a quiet point: everything asked before has run when `work` runs).
  void run_on_store(std::function<void(SqliteJobStore&)> work, std::function<void()> done);

 private:
  struct Shared;
  struct Batch;
  /// Moves the loop's buffer to the store thread (appended to the store's own buffer there).
  void hand_over();
  /// Posts `work` to the store thread and its result back to the loop.
  template <class T>
  void ask(std::function<T(SqliteJobStore&)> work, std::function<void(T)> done);

  boost::asio::any_io_executor loop_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Batch> batch_;  ///< rows recorded on the loop since the last hand-over
  std::size_t max_pending_rows_;
  std::uint64_t handed_over_total_ = 0;  ///< rows ever handed over
  std::uint64_t counted_to_ = 0;  ///< handed_over_total_ when the last answered commit was asked
  std::size_t kept_rows_ = 0;     ///< still held on the store thread per the last commit outcome
  bool failed_ = false;
  bool started_ = false;
};

}  // namespace vapor::store
