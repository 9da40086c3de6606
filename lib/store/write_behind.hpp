#pragma once

#include <chrono>
#include <cstddef>

#include <boost/asio/any_io_executor.hpp>

#include "core/job_events.hpp"
#include "store/sqlite_job_store.hpp"
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
  /// A commit that failed; the rows stay buffered for the next attempt.
  virtual void on_commit_failed(const Error& error) = 0;
  /// The buffer reached `store.max_pending_rows` (true) or drained below it again (false).
  virtual void on_backlog_changed(bool backlogged) = 0;
};

struct WriteBehindOptions {
  std::chrono::milliseconds flush_interval{1000};  ///< store.flush_interval
  std::size_t flush_rows = 5000;                   ///< store.flush_rows: commit early at this many
};

/// The store's write-behind policy: commits every `flush_interval`, and as soon as `flush_rows`
/// rows wait (after the current burst of steps, so no single commit holds the loop for long),
/// but not while commits fail: the timer retries those at its own pace. Logs the first failure
/// and the recovery, and reports backlog changes. Add it as a scheduler listener after the store,
/// so that it counts the rows the store has just buffered. Event-loop thread only.
class WriteBehindFlusher final : public core::JobEventListener {
 public:
  WriteBehindFlusher(const boost::asio::any_io_executor& executor, SqliteJobStore& store,
                     WriteBehindOptions options, WriteBehindObserver& observer);

  /// Starts the flush timer.
  void start();
  /// Stops the timer and early flushes; the owner commits the last batch with `flush()`.
  void cancel();
  /// Commits what is buffered now; false when the commit failed (the rows are kept).
  bool flush();

  [[nodiscard]] bool failing() const { return failed_flushes_ > 0; }
  [[nodiscard]] bool backlogged() const { return backlogged_; }

  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged&) override {}

 private:
  boost::asio::any_io_executor executor_;
  SqliteJobStore& store_;
  WriteBehindOptions options_;
  WriteBehindObserver& observer_;
  RepeatingTimer timer_;
  std::size_t failed_flushes_ = 0;
  bool backlogged_ = false;
  bool early_flush_posted_ = false;
  bool cancelled_ = false;
};

}  // namespace vapor::store
