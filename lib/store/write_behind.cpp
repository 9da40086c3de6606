#include "store/write_behind.hpp"

#include <string>

#include <boost/asio/post.hpp>

#include "support/log.hpp"

namespace vapor::store {

WriteBehindFlusher::WriteBehindFlusher(const boost::asio::any_io_executor& executor,
                                       SqliteJobStore& store, WriteBehindOptions options,
                                       WriteBehindObserver& observer)
    : executor_(executor),
      store_(store),
      options_(options),
      observer_(observer),
      timer_(executor, [this] { flush(); }) {}

void WriteBehindFlusher::start() {
  cancelled_ = false;
  timer_.start(options_.flush_interval);
}

void WriteBehindFlusher::cancel() {
  cancelled_ = true;
  timer_.cancel();
}

void WriteBehindFlusher::on_step(const core::StepRecorded&) {
  if (early_flush_posted_ || failed_flushes_ > 0 || cancelled_) return;
  if (store_.pending_rows() < options_.flush_rows) return;
  early_flush_posted_ = true;
  // After the current burst of steps: the scheduler is in the middle of an advance.
  boost::asio::post(executor_, [this] {
    early_flush_posted_ = false;
    if (!cancelled_) flush();
  });
}

bool WriteBehindFlusher::flush() {
  auto flushed = store_.flush();
  if (flushed && (flushed->points + flushed->transitions + flushed->jobs) > 0) {
    observer_.on_commit(*flushed);
  }
  if (!flushed) {
    observer_.on_commit_failed(flushed.error());
    if (failed_flushes_++ == 0) {
      log::error("store: commit failed, keeping " + std::to_string(store_.pending_rows()) +
                 " rows for the next attempt: " + flushed.error().message);
    }
  } else if (failed_flushes_ > 0) {
    log::notice("store: commits succeed again after " + std::to_string(failed_flushes_) +
                " failed attempts");
    failed_flushes_ = 0;
  }
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
  return static_cast<bool>(flushed);
}

}  // namespace vapor::store
