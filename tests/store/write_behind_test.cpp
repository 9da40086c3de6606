// The write-behind policy and the store thread together, against a real SQLite file: the loop
// (this test's io_context) records rows, the flusher decides when they are committed, and the
// commits, reads and retention passes run on the store thread.

#include "store/write_behind.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/job_events.hpp"
#include "store/store_thread.hpp"
#include "support/daemon_process.hpp"
#include "support/job_specs.hpp"

namespace vapor::store {
namespace {

using std::chrono::milliseconds;

/// What the flusher told its owner, in order.
class RecordingObserver final : public WriteBehindObserver {
 public:
  void on_commit(const FlushStats& stats) override { commits.push_back(stats); }
  void on_commit_failed(const Error& error, bool permanent) override {
    failures.push_back(error.message);
    permanent_failures.push_back(permanent);
  }
  void on_pruned(std::size_t points) override { pruned += points; }
  void on_backlog_changed(bool backlogged) override { backlog_changes.push_back(backlogged); }

  std::vector<FlushStats> commits;
  std::vector<std::string> failures;
  std::vector<bool> permanent_failures;
  std::size_t pruned = 0;
  std::vector<bool> backlog_changes;
};

/// Another process's write lock on the database, taken and released by the test.
class WriteLock {
 public:
  explicit WriteLock(const std::filesystem::path& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;
  ~WriteLock() {
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

core::StepRecorded step_event(core::JobId job, std::uint64_t step) {
  return testing::step_recorded(job, step);
}

class WriteBehindTest : public ::testing::Test {
 protected:
  /// A started store thread over a fresh file, holding job 1 (not yet committed).
  std::unique_ptr<StoreThread> open_store(std::size_t max_pending_rows) {
    StoreOptions options;
    options.path = dir_ / "vapor.db";
    options.busy_timeout = milliseconds(10);
    options.max_pending_rows = max_pending_rows;
    auto store = std::make_unique<StoreThread>(ioc_.get_executor(),
                                               SqliteJobStore::open(options).value(),
                                               max_pending_rows);
    store->start();
    store->add_job({1, "resnet", R"({"model":"resnet"})", core::WallTime{}});
    return store;
  }

  /// Records steps as the scheduler would: the store buffers, then the flusher counts.
  static void record(StoreThread& store, WriteBehindFlusher& flusher, std::uint64_t first,
                     std::uint64_t last, core::JobId job = 1) {
    for (auto step = first; step <= last; ++step) {
      store.on_step(step_event(job, step));
      flusher.on_step(step_event(job, step));
    }
  }

  /// Runs the loop until `done` holds (answers come from the store thread).
  void run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      ioc_.restart();
      ioc_.run_for(milliseconds(2));
    }
    ASSERT_TRUE(done()) << "timed out waiting for the store thread";
  }

  /// The points of a job as a reader sees them now.
  std::vector<StoredPoint> points_of(StoreThread& store, core::JobId job) {
    std::optional<Result<std::vector<StoredPoint>>> loaded;
    store.load_points(job, 0, 1'000'000, [&](auto result) { loaded = std::move(result); });
    run_until([&] { return loaded.has_value(); });
    EXPECT_TRUE(loaded && *loaded) << (loaded && !*loaded ? loaded->error().message : "");
    return loaded && *loaded ? std::move(**loaded) : std::vector<StoredPoint>{};
  }

  testing::TempDir dir_;
  boost::asio::io_context ioc_;
  RecordingObserver observer_;
};

TEST_F(WriteBehindTest, CommitsOnceFlushRowsWaitAfterTheBurstNotDuringIt) {
  auto store = open_store(1'000'000);
  // A long interval: only the row count can cause a commit here.
  WriteBehindFlusher flusher(ioc_.get_executor(), *store, {std::chrono::hours(1), 100},
                             observer_);
  flusher.start();

  record(*store, flusher, 1, 98);  // 99 rows with the job's
  ioc_.run_for(milliseconds(50));
  EXPECT_TRUE(observer_.commits.empty()) << "below flush_rows nothing is committed early";

  record(*store, flusher, 99, 250);  // one burst that passes flush_rows
  EXPECT_EQ(store->pending_rows(), 251u) << "no commit inside the burst";
  run_until([&] { return !observer_.commits.empty(); });
  ASSERT_EQ(observer_.commits.size(), 1u) << "one commit for the whole burst";
  EXPECT_EQ(observer_.commits[0].points, 250u);
  EXPECT_EQ(observer_.commits[0].jobs, 1u);
  EXPECT_EQ(store->pending_rows(), 0u);
  flusher.cancel();
}

TEST_F(WriteBehindTest, TheTimerCommitsWhatWaitsEveryInterval) {
  auto store = open_store(1'000'000);
  WriteBehindFlusher flusher(ioc_.get_executor(), *store, {milliseconds(20), 5000}, observer_);
  flusher.start();
  record(*store, flusher, 1, 10);
  run_until([&] { return !observer_.commits.empty(); });
  EXPECT_EQ(observer_.commits[0].points, 10u);
  EXPECT_EQ(store->pending_rows(), 0u);
  ioc_.run_for(milliseconds(100));
  EXPECT_EQ(observer_.commits.size(), 1u) << "an interval with nothing to write reports nothing";

  flusher.cancel();
  record(*store, flusher, 11, 20);
  ioc_.restart();
  ioc_.run_for(milliseconds(100));
  EXPECT_EQ(store->pending_rows(), 10u) << "a cancelled flusher commits nothing by itself";
  std::optional<bool> last;
  flusher.flush_last([&](bool committed) { last = committed; });
  run_until([&] { return last.has_value(); });
  EXPECT_TRUE(*last) << "the owner's last flush";
  EXPECT_EQ(store->pending_rows(), 0u);
}

TEST_F(WriteBehindTest, TransientFailuresKeepTheRowsPauseEarlyFlushesAndReportTheBacklog) {
  auto store = open_store(200);
  WriteBehindFlusher flusher(ioc_.get_executor(), *store, {std::chrono::hours(1), 100},
                             observer_);
  flusher.start();
  {
    WriteLock lock(dir_ / "vapor.db");
    record(*store, flusher, 1, 150);
    run_until([&] { return observer_.failures.size() == 1; });
    EXPECT_EQ(observer_.permanent_failures, std::vector<bool>{false}) << "a lock is transient";
    EXPECT_TRUE(flusher.failing());
    EXPECT_FALSE(flusher.failed_permanently());
    EXPECT_EQ(store->pending_rows(), 151u) << "nothing lost";

    // While commits fail, more rows cause no more early attempts (the timer retries).
    record(*store, flusher, 151, 300);
    ioc_.run_for(milliseconds(100));
    EXPECT_EQ(observer_.failures.size(), 1u);

    // The owner's own attempt fails too and reports the backlog: producers must pause.
    flusher.flush();
    run_until([&] { return observer_.failures.size() == 2; });
    EXPECT_EQ(observer_.backlog_changes, std::vector<bool>{true});
    EXPECT_TRUE(flusher.backlogged());
  }
  flusher.flush();
  run_until([&] { return !observer_.commits.empty(); });
  EXPECT_FALSE(flusher.failing());
  EXPECT_EQ((observer_.backlog_changes), (std::vector<bool>{true, false}));
  ASSERT_EQ(observer_.commits.size(), 1u);
  EXPECT_EQ(observer_.commits[0].points, 300u);
  EXPECT_EQ(points_of(*store, 1).size(), 300u);
  flusher.cancel();
}

TEST_F(WriteBehindTest, APermanentFailureStopsRetryingDropsRowsAndNeverPausesJobs) {
  auto store = open_store(200);
  WriteBehindFlusher flusher(ioc_.get_executor(), *store, {milliseconds(20), 100}, observer_);
  flusher.start();
  record(*store, flusher, 1, 10);
  run_until([&] { return observer_.commits.size() == 1; });

  // Someone else's row under an id this daemon hands out: the insert can never succeed.
  store->add_job({1, "duplicate", R"({"model":"resnet"})", core::WallTime{}});
  record(*store, flusher, 11, 20);
  run_until([&] { return !observer_.failures.empty(); });
  EXPECT_EQ(observer_.permanent_failures, std::vector<bool>{true});
  EXPECT_NE(observer_.failures[0].find("UNIQUE constraint failed"), std::string::npos)
      << observer_.failures[0];
  EXPECT_TRUE(flusher.failed_permanently());

  // Far past max_pending_rows: rows are dropped, not kept, so producers are never paused, and
  // no further commit is attempted (one failure reported, however many intervals pass).
  record(*store, flusher, 21, 1000);
  ioc_.run_for(milliseconds(200));
  EXPECT_EQ(observer_.failures.size(), 1u);
  EXPECT_TRUE(observer_.backlog_changes.empty());
  EXPECT_FALSE(store->backlogged());
  EXPECT_EQ(store->pending_rows(), 0u) << "each interval drops what was recorded";

  // What was committed before the failure can still be read.
  const auto points = points_of(*store, 1);
  ASSERT_EQ(points.size(), 10u);
  EXPECT_EQ(points.back().step, 10u);
  flusher.cancel();
}

/// A finished job: its transitions to running and to `to`, at `finished`.
void finish_job(StoreThread& store, core::JobId job, core::WallTime finished,
                core::JobState to = core::JobState::complete) {
  store.on_state_changed({job, core::JobState::queued, core::JobState::running, "",
                          finished - std::chrono::hours(1)});
  store.on_state_changed({job, core::JobState::running, to, "", finished});
}

TEST_F(WriteBehindTest, RetentionDeletesExactlyThePointsOfJobsFinishedLongerAgo) {
  auto store = open_store(1'000'000);
  const auto now = std::chrono::system_clock::now();
  for (core::JobId job = 2; job <= 4; ++job) {
    store->add_job({job, "job-" + std::to_string(job), R"({"model":"m"})", core::WallTime{}});
  }
  // 1: finished three days ago; 2: finished two days ago (failed); 3: finished an hour ago;
  // 4: still running. keep_points is one day.
  finish_job(*store, 1, now - std::chrono::hours(72));
  finish_job(*store, 2, now - std::chrono::hours(48), core::JobState::failed);
  finish_job(*store, 3, now - std::chrono::hours(1));
  store->on_state_changed({4, core::JobState::queued, core::JobState::running, "", now});
  WriteBehindOptions options{std::chrono::hours(1), 1'000'000, std::chrono::hours(24), 64,
                             std::chrono::hours(1)};
  WriteBehindFlusher flusher(ioc_.get_executor(), *store, options, observer_);
  for (core::JobId job = 1; job <= 4; ++job) record(*store, flusher, 1, 300, job);
  flusher.flush();
  run_until([&] { return observer_.commits.size() == 1; });

  flusher.start();
  flusher.prune();  // the timer's first pass, now; passes of 64 points follow while more is due
  run_until([&] { return observer_.pruned == 600; });
  ioc_.run_for(milliseconds(100));
  EXPECT_EQ(observer_.pruned, 600u) << "only jobs 1 and 2 were due";

  EXPECT_TRUE(points_of(*store, 1).empty());
  EXPECT_TRUE(points_of(*store, 2).empty());
  EXPECT_EQ(points_of(*store, 3).size(), 300u);
  EXPECT_EQ(points_of(*store, 4).size(), 300u);

  // The jobs and their transitions stay.
  std::optional<Result<std::vector<StoredTransition>>> transitions;
  store->load_transitions(1, [&](auto result) { transitions = std::move(result); });
  run_until([&] { return transitions.has_value(); });
  ASSERT_TRUE(*transitions);
  EXPECT_EQ((*transitions)->size(), 2u);
  // Counted on the store thread, read on the loop once the answer has been posted back.
  std::size_t counted = 0;
  std::optional<std::size_t> jobs;
  store->run_on_store([&](SqliteJobStore& sqlite) { counted = sqlite.load_jobs().value().size(); },
                      [&] { jobs = counted; });
  run_until([&] { return jobs.has_value(); });
  EXPECT_EQ(*jobs, 4u);
  flusher.cancel();
}

TEST_F(WriteBehindTest, ShutdownDuringALongReadStillCommitsTheLastBatch) {
  {
    auto store = open_store(1'000'000);
    WriteBehindFlusher flusher(ioc_.get_executor(), *store, {std::chrono::hours(1), 1'000'000},
                               observer_);
    record(*store, flusher, 1, 500);
    // A read that takes a while is running on the store thread when the shutdown comes.
    bool read_done = false;
    store->run_on_store([](SqliteJobStore&) { std::this_thread::sleep_for(milliseconds(300)); },
                        [&] { read_done = true; });
    record(*store, flusher, 501, 1000);
    std::optional<bool> last;
    flusher.flush_last([&](bool committed) { last = committed; });
    EXPECT_FALSE(read_done);
    ioc_.restart();
    ioc_.run();  // returns once every answer from the store thread has been delivered
    EXPECT_TRUE(read_done);
    ASSERT_TRUE(last.has_value());
    EXPECT_TRUE(*last);
  }
  auto reopened = SqliteJobStore::open({dir_ / "vapor.db"}).value();
  auto points = reopened->load_points(1, 0, 10'000);
  ASSERT_TRUE(points);
  EXPECT_EQ(points->size(), 1000u);
}

TEST_F(WriteBehindTest, ReadsSeeEveryRowRecordedBeforeThemWhileCommitsRun) {
  // The loop records while commits of 50 rows run on the store thread; every read, asked at
  // any moment, holds exactly the steps recorded before it: 1..n, none missing, none twice.
  auto store = open_store(1'000'000);
  WriteBehindFlusher flusher(ioc_.get_executor(), *store, {milliseconds(1), 50}, observer_);
  flusher.start();
  struct Read {
    std::uint64_t recorded;
    std::optional<Result<std::vector<StoredPoint>>> loaded;
  };
  std::vector<std::unique_ptr<Read>> reads;
  constexpr std::uint64_t total = 20'000;
  for (std::uint64_t step = 1; step <= total; ++step) {
    record(*store, flusher, step, step);
    if (step % 997 == 0) {
      auto& read = *reads.emplace_back(std::make_unique<Read>(Read{step, std::nullopt}));
      store->load_points(1, 0, 1'000'000, [&read](auto result) { read.loaded = std::move(result); });
    }
    if (step % 50 == 0) ioc_.poll();  // the loop's other work: commit outcomes, timers
    if (step % 1500 == 0) flusher.flush();  // commits between the reads, however busy the CPU
  }
  run_until([&] {
    for (const auto& read : reads) {
      if (!read->loaded) return false;
    }
    return true;
  });
  for (const auto& read : reads) {
    ASSERT_TRUE(*read->loaded) << read->loaded->error().message;
    const auto& points = **read->loaded;
    ASSERT_EQ(points.size(), read->recorded) << "read asked after step " << read->recorded;
    for (std::size_t i = 0; i < points.size(); ++i) ASSERT_EQ(points[i].step, i + 1);
  }
  // The first commit was asked for before the second read: reads saw committed rows, rows
  // held for the next commit, and both.
  EXPECT_GE(observer_.commits.size(), 1u);
  flusher.cancel();
}

}  // namespace
}  // namespace vapor::store
