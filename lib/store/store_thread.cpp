#include "store/store_thread.hpp"

#include <pthread.h>

#include <cassert>
#include <csignal>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include "store/detail/pending_rows.hpp"
#include "support/log.hpp"

namespace vapor::store {
namespace asio = boost::asio;

namespace {

/// How often a long statement on the store thread offers the CPU to the loop: every this many
/// SQLite virtual-machine instructions (about 20-50 microseconds of work).
constexpr int yield_every_instructions = 2000;

}  // namespace

/// What the store thread owns. Shared with the posted work so that it outlives whatever is
/// still queued when the StoreThread goes away.
struct StoreThread::Shared {
  explicit Shared(std::unique_ptr<SqliteJobStore> owned) : store(std::move(owned)) {}

  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> keep_running{
      ioc.get_executor()};
  std::thread thread;
  std::unique_ptr<SqliteJobStore> store;  ///< used on the store thread only, once started
  bool failed = false;                    ///< store thread only: a commit failed permanently

  void run() {
    // The store thread is background work at the loop's priority (so a machine busy with
    // training jobs never starves it): when both want one CPU (vapord pinned to a core, or a
    // busy machine), a long query or commit steps aside every few tens of microseconds, and
    // the loop, which answers users and runs the jobs, goes first.
    store->yield_during_statements(yield_every_instructions);
    // A request that throws (an allocation failure) loses its answer, not the thread.
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& failure) {
        log::error(std::string("store thread: a request failed: ") + failure.what());
      }
    }
  }
};

/// Rows recorded on the loop since the last hand-over, already in the store's buffer format
/// (points grouped by job), so that the store thread takes them over without copying.
struct StoreThread::Batch {
  std::vector<NewJob> jobs;
  detail::PendingRows rows;

  [[nodiscard]] std::size_t count() const { return jobs.size() + rows.row_count(); }
};

StoreThread::StoreThread(const asio::any_io_executor& loop, std::unique_ptr<SqliteJobStore> store,
                         std::size_t max_pending_rows)
    : loop_(loop),
      shared_(std::make_shared<Shared>(std::move(store))),
      batch_(std::make_unique<Batch>()),
      max_pending_rows_(max_pending_rows) {}

StoreThread::~StoreThread() { stop(); }

SqliteJobStore& StoreThread::startup_store() {
  assert(!started_ && "the store belongs to the store thread once it runs");
  return *shared_->store;
}

void StoreThread::start() {
  if (started_) return;
  started_ = true;
  // Signals go to the event loop (its signal_set), never to the store thread: it starts with
  // every signal blocked, as it inherits the mask it is created under.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  shared_->thread = std::thread([shared = shared_] { shared->run(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void StoreThread::stop() {
  if (!started_) {
    // Never ran: what was recorded still goes to the store, for its owner's last flush.
    hand_over();
    return;
  }
  hand_over();
  shared_->keep_running.reset();
  if (shared_->thread.joinable()) shared_->thread.join();
}

void StoreThread::add_job(const NewJob& job) { batch_->jobs.push_back(job); }

void StoreThread::on_step(const core::StepRecorded& event) { batch_->rows.add_point(event); }

void StoreThread::on_state_changed(const core::JobStateChanged& event) {
  batch_->rows.add_transition(event);
}

void StoreThread::on_start_requested(core::JobId job_id) {
  batch_->rows.add_start_request(job_id);
}

void StoreThread::hand_over() {
  if (batch_->count() == 0) return;
  handed_over_total_ += batch_->count();
  auto batch = std::make_shared<Batch>(std::move(*batch_));
  batch_ = std::make_unique<Batch>();
  auto append = [shared = shared_, batch] {
    if (shared->failed) return;  // nothing is kept once commits cannot succeed
    shared->store->add_rows(std::move(batch->jobs), std::move(batch->rows));
  };
  if (started_) {
    asio::post(shared_->ioc, std::move(append));
  } else {
    append();
  }
}

template <class T>
void StoreThread::ask(std::function<T(SqliteJobStore&)> work, std::function<void(T)> done) {
  hand_over();
  // Tracked: the loop's io_context keeps running until the answer has been delivered.
  auto loop = asio::prefer(loop_, asio::execution::outstanding_work.tracked);
  auto task = [shared = shared_, loop, work = std::move(work), done = std::move(done)]() mutable {
    auto answer = std::make_shared<T>(work(*shared->store));
    asio::post(loop, [answer, done = std::move(done)] { done(std::move(*answer)); });
  };
  if (started_) {
    asio::post(shared_->ioc, std::move(task));
  } else {
    // Before the thread runs (start-up and tests of the loop side alone): the work runs now,
    // its answer still comes later, from the loop.
    task();
  }
}

void StoreThread::commit(std::function<void(CommitOutcome)> done) {
  hand_over();
  const std::uint64_t handed_at_request = handed_over_total_;
  auto work = [shared = shared_](SqliteJobStore& store) {
    CommitOutcome outcome;
    if (shared->failed) {
      outcome.rows_dropped = store.discard_pending();
      outcome.kind = FailureKind::permanent;
      outcome.result = fail("the store stopped committing after a permanent error");
      return outcome;
    }
    outcome.result = store.flush();
    if (!outcome.result) {
      outcome.kind = store.last_failure_kind();
      if (outcome.kind == FailureKind::permanent) {
        shared->failed = true;
        outcome.rows_dropped = store.discard_pending();
      }
    }
    outcome.rows_kept = store.pending_rows();
    return outcome;
  };
  ask<CommitOutcome>(std::move(work), [this, handed_at_request,
                                       done = std::move(done)](CommitOutcome outcome) {
    // Rows handed over after this commit was asked for were not part of it; those before it
    // are committed, dropped, or counted in rows_kept. Outcomes arrive in the order asked.
    counted_to_ = handed_at_request;
    kept_rows_ = outcome.rows_kept;
    if (!outcome.result && outcome.kind == FailureKind::permanent) failed_ = true;
    done(std::move(outcome));
  });
}

std::size_t StoreThread::pending_rows() const {
  return batch_->count() + static_cast<std::size_t>(handed_over_total_ - counted_to_) + kept_rows_;
}

bool StoreThread::backlogged() const { return !failed_ && pending_rows() >= max_pending_rows_; }

void StoreThread::prune(core::WallTime finished_before, std::size_t max_rows,
                        std::function<void(Result<PruneStats>)> done) {
  ask<Result<PruneStats>>(
      [finished_before, max_rows](SqliteJobStore& store) {
        return store.prune_points(finished_before, max_rows);
      },
      std::move(done));
}

void StoreThread::load_points(core::JobId job_id, std::uint64_t after_step, std::size_t limit,
                              Reply<std::vector<StoredPoint>> done) {
  ask<Result<std::vector<StoredPoint>>>(
      [=](SqliteJobStore& store) { return store.load_points(job_id, after_step, limit); },
      std::move(done));
}

void StoreThread::load_points_downsampled(core::JobId job_id, std::uint64_t after_step,
                                          std::uint64_t up_to_step, std::size_t max_points,
                                          Reply<std::vector<StoredPoint>> done) {
  ask<Result<std::vector<StoredPoint>>>(
      [=](SqliteJobStore& store) {
        return store.load_points_downsampled(job_id, after_step, up_to_step, max_points);
      },
      std::move(done));
}

void StoreThread::load_transitions(core::JobId job_id,
                                   Reply<std::vector<StoredTransition>> done) {
  ask<Result<std::vector<StoredTransition>>>(
      [=](SqliteJobStore& store) { return store.load_transitions(job_id); }, std::move(done));
}

void StoreThread::run_on_store(std::function<void(SqliteJobStore&)> work,
                               std::function<void()> done) {
  ask<bool>(
      [work = std::move(work)](SqliteJobStore& store) {
        work(store);
        return true;
      },
      [done = std::move(done)](bool) { done(); });
}

}  // namespace vapor::store
