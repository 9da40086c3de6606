#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include <boost/asio/any_io_executor.hpp>

#include "core/job_events.hpp"
#include "store/store_thread.hpp"
#include "support/repeating_timer.hpp"
#include "support/result.hpp"

namespace vapor::store {

/// What the write-behind policy tells its owner: commits for the metrics, and when producers
/// must pause because the store is behind. Called on the event-loop thread.
class WriteBehindObserver {
 public:
  WriteBehindObserver() = default;
  WriteBehindObserver(const WriteBehindObserver&) = delete;
  WriteBehindObserver& operator=(const WriteBehindObserver&) = delete;
  virtual ~WriteBehindObserver() = default;

  /// A commit that wrote at least one row.
  virtual void on_commit(const FlushStats& stats) = 0;
  /// A commit that failed; after a transient failure the rows stay buffered for the next
  /// attempt, after a permanent one (`permanent`) the store has stopped committing.
  virtual void on_commit_failed(const Error& error, bool permanent) = 0;
  /// A retention pass deleted `points` old points.
  virtual void on_pruned(std::size_t points) = 0;
  /// The buffer reached `store.max_pending_rows` (true) or drained below it again (false).
  virtual void on_backlog_changed(bool backlogged) = 0;
};

struct WriteBehindOptions {
  std::chrono::milliseconds flush_interval{1000};  ///< store.flush_interval
  std::size_t flush_rows = 5000;                   ///< store.flush_rows: commit early at this many
  std::chrono::milliseconds keep_points{0};        ///< store.keep_points (0: keep forever)
  std::size_t prune_batch_rows = 5000;             ///< store.prune_batch_rows
  std::chrono::milliseconds prune_interval{60'000};  ///< how often retention runs
};

/// The store's write-behind policy: commits every `flush_interval`, and as soon as `flush_rows`
/// rows wait (after the current burst of steps), one commit at a time, but not while commits
/// fail: the timer retries those at its own pace. A permanent failure stops the retries (the
/// store drops rows from then on, so jobs never pause for it). Logs the first failure and the
/// recovery, reports backlog changes, and runs retention (`keep_points`) in small passes, one
/// after another while there is more to delete. Add it as a scheduler listener after the store,
/// so that it counts the rows the store has just buffered. Event-loop thread only.
class WriteBehindFlusher final : public core::JobEventListener {
 public:
  WriteBehindFlusher(const boost::asio::any_io_executor& executor, StoreThread& store,
                     WriteBehindOptions options, WriteBehindObserver& observer);

  /// Starts the flush and retention timers.
  void start();
  /// Stops the timers and early flushes; the owner commits the last batch with `flush_last()`.
  void cancel();
  /// Commits what is buffered now, unless a commit is already running (it is then asked again
  /// when that one ends).
  void flush();
  /// The last commit (at shutdown): `done(true)` once everything recorded is committed.
  void flush_last(std::function<void(bool)> done);
  /// One retention pass now, and more while there is more to delete.
  void prune();

  /// Commits have failed since the last success (transient) or for good (permanent).
  [[nodiscard]] bool failing() const { return failed_flushes_ > 0 || failed_permanently_; }
  /// The store has stopped committing after a permanent error.
  [[nodiscard]] bool failed_permanently() const { return failed_permanently_; }
  [[nodiscard]] bool backlogged() const { return backlogged_; }

  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged&) override {}

 private:
  void on_outcome(const CommitOutcome& outcome);
  void check_backlog();

  boost::asio::any_io_executor executor_;
  StoreThread& store_;
  WriteBehindOptions options_;
  WriteBehindObserver& observer_;
  RepeatingTimer timer_;
  RepeatingTimer prune_timer_;
  std::size_t failed_flushes_ = 0;
  bool failed_permanently_ = false;
  bool backlogged_ = false;
  bool early_flush_posted_ = false;
  bool committing_ = false;
  bool commit_again_ = false;
  bool pruning_ = false;
  bool cancelled_ = false;
  std::function<void(bool)> last_done_;
};

}  // namespace vapor::store
