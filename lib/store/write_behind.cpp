#include "store/write_behind.hpp"

#include <string>
#include <utility>

#include <boost/asio/post.hpp>

#include "support/log.hpp"

namespace vapor::store {

WriteBehindFlusher::WriteBehindFlusher(const boost::asio::any_io_executor& executor,
                                       StoreThread& store, WriteBehindOptions options,
                                       WriteBehindObserver& observer)
    : executor_(executor),
      store_(store),
      options_(options),
      observer_(observer),
      timer_(executor, [this] { flush(); }),
      prune_timer_(executor, [this] { prune(); }) {}

void WriteBehindFlusher::start() {
  cancelled_ = false;
  timer_.start(options_.flush_interval);
  if (options_.keep_points.count() > 0) prune_timer_.start(options_.prune_interval);
}

void WriteBehindFlusher::cancel() {
  cancelled_ = true;
  timer_.cancel();
  prune_timer_.cancel();
}

void WriteBehindFlusher::on_step(const core::StepRecorded&) {
  if (early_flush_posted_ || committing_ || failing() || cancelled_) return;
  if (store_.pending_rows() < options_.flush_rows) return;
  early_flush_posted_ = true;
  // After the current burst of steps: the scheduler is in the middle of an advance.
  boost::asio::post(executor_, [this] {
    early_flush_posted_ = false;
    if (!cancelled_) flush();
  });
}

void WriteBehindFlusher::flush() {
  if (committing_) {
    commit_again_ = true;
    return;
  }
  committing_ = true;
  commit_again_ = false;
  store_.commit([this](CommitOutcome outcome) { on_outcome(outcome); });
}

void WriteBehindFlusher::flush_last(std::function<void(bool)> done) {
  last_done_ = std::move(done);
  flush();
}

void WriteBehindFlusher::on_outcome(const CommitOutcome& outcome) {
  committing_ = false;
  const auto& flushed = outcome.result;
  if (flushed && (flushed->points + flushed->transitions + flushed->jobs) > 0) {
    observer_.on_commit(*flushed);
  }
  if (!flushed) {
    const bool permanent = outcome.kind == FailureKind::permanent;
    if (permanent && !failed_permanently_) {
      failed_permanently_ = true;
      log::error("store: commits stopped for good: " + flushed.error().message + "; " +
                 std::to_string(outcome.rows_dropped) +
                 " rows were dropped and new ones will be too (jobs keep running, their "
                 "history is not saved); fix or replace the database and restart vapord");
      observer_.on_commit_failed(flushed.error(), true);
    } else if (!permanent) {
      observer_.on_commit_failed(flushed.error(), false);
      if (failed_flushes_++ == 0) {
        log::error("store: commit failed, keeping " + std::to_string(outcome.rows_kept) +
                   " rows for the next attempt: " + flushed.error().message);
      }
    }
  } else if (failed_flushes_ > 0) {
    log::notice("store: commits succeed again after " + std::to_string(failed_flushes_) +
                " failed attempts");
    failed_flushes_ = 0;
  }
  check_backlog();
  if (commit_again_) {
    flush();
    return;
  }
  if (last_done_) {
    auto done = std::move(last_done_);
    last_done_ = nullptr;
    done(static_cast<bool>(flushed) && store_.pending_rows() == 0);
  }
}

void WriteBehindFlusher::check_backlog() {
  if (const bool backlogged = store_.backlogged(); backlogged != backlogged_) {
    if (backlogged) {
      log::warning("store: " + std::to_string(store_.pending_rows()) +
                   " rows waiting (store.max_pending_rows); pausing jobs until commits catch up");
    } else {
      log::notice("store: caught up; jobs resume");
    }
    backlogged_ = backlogged;
    observer_.on_backlog_changed(backlogged);
  }
}

void WriteBehindFlusher::prune() {
  if (pruning_ || cancelled_ || failed_permanently_ || options_.keep_points.count() <= 0) return;
  pruning_ = true;
  const core::WallTime cutoff =
      std::chrono::system_clock::now() -
      options_.keep_points;
  store_.prune(cutoff, options_.prune_batch_rows, [this](Result<PruneStats> pruned) {
    pruning_ = false;
    if (!pruned) {
      log::warning("store: retention (store.keep_points) failed; it runs again within a "
                   "minute: " + pruned.error().message);
      return;
    }
    if (pruned->points == 0) return;
    observer_.on_pruned(pruned->points);
    log::info("store: deleted " + std::to_string(pruned->points) + " old points of job " +
               std::to_string(pruned->job_id) + " (store.keep_points)");
    prune();  // more may be due; each pass is its own short transaction
  });
}

}  // namespace vapor::store
