#include "store/write_behind.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/job_events.hpp"
#include "support/daemon_process.hpp"

namespace vapor::store {
namespace {

using std::chrono::milliseconds;

/// What the flusher told its owner, in order.
class RecordingObserver final : public WriteBehindObserver {
 public:
  void on_commit(const FlushStats& stats) override { commits.push_back(stats); }
  void on_commit_failed(const Error& error) override { failures.push_back(error.message); }
  void on_backlog_changed(bool backlogged) override { backlog_changes.push_back(backlogged); }

  std::vector<FlushStats> commits;
  std::vector<std::string> failures;
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
  core::StepRecorded event;
  event.job_id = job;
  event.step = step;
  event.epoch = 1;
  event.loss = 1.0 / static_cast<double>(step);
  event.ts = core::WallTime(milliseconds(1'700'000'000'000 + static_cast<std::int64_t>(step)));
  return event;
}

class WriteBehindTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteJobStore> open_store(std::size_t max_pending_rows) {
    StoreOptions options;
    options.path = dir_ / "vapor.db";
    options.busy_timeout = milliseconds(10);
    options.max_pending_rows = max_pending_rows;
    auto store = SqliteJobStore::open(options).value();
    store->add_job({1, "resnet", R"({"model":"resnet"})", core::WallTime{}});
    return store;
  }

  /// Records steps as the scheduler would: the store buffers, then the flusher counts.
  static void record(SqliteJobStore& store, WriteBehindFlusher& flusher, std::uint64_t first,
                     std::uint64_t last) {
    for (auto step = first; step <= last; ++step) {
      store.on_step(step_event(1, step));
      flusher.on_step(step_event(1, step));
    }
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
  ioc_.poll();
  EXPECT_TRUE(observer_.commits.empty()) << "below flush_rows nothing is committed early";

  record(*store, flusher, 99, 250);  // one burst that passes flush_rows
  EXPECT_EQ(store->pending_rows(), 251u) << "no commit inside the burst";
  ioc_.poll();
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
  ioc_.run_for(milliseconds(200));
  ASSERT_FALSE(observer_.commits.empty());
  EXPECT_EQ(observer_.commits[0].points, 10u);
  EXPECT_EQ(store->pending_rows(), 0u);
  EXPECT_EQ(observer_.commits.size(), 1u) << "an interval with nothing to write reports nothing";

  flusher.cancel();
  record(*store, flusher, 11, 20);
  ioc_.restart();
  ioc_.run_for(milliseconds(100));
  EXPECT_EQ(store->pending_rows(), 10u) << "a cancelled flusher commits nothing by itself";
  EXPECT_TRUE(flusher.flush()) << "the owner's last flush";
  EXPECT_EQ(store->pending_rows(), 0u);
}

TEST_F(WriteBehindTest, FailedCommitsKeepTheRowsPauseEarlyFlushesAndReportTheBacklog) {
  auto store = open_store(200);
  WriteBehindFlusher flusher(ioc_.get_executor(), *store, {std::chrono::hours(1), 100},
                             observer_);
  flusher.start();
  {
    WriteLock lock(dir_ / "vapor.db");
    record(*store, flusher, 1, 150);
    ioc_.poll();
    ASSERT_EQ(observer_.failures.size(), 1u) << "the early flush ran into the lock";
    EXPECT_TRUE(flusher.failing());
    EXPECT_EQ(store->pending_rows(), 151u) << "nothing lost";

    // While commits fail, more rows cause no more early attempts (the timer retries).
    record(*store, flusher, 151, 300);
    ioc_.poll();
    EXPECT_EQ(observer_.failures.size(), 1u);

    // The owner's own attempt fails too and reports the backlog: producers must pause.
    EXPECT_FALSE(flusher.flush());
    EXPECT_EQ(observer_.backlog_changes, std::vector<bool>{true});
    EXPECT_TRUE(flusher.backlogged());
  }
  EXPECT_TRUE(flusher.flush());
  EXPECT_FALSE(flusher.failing());
  EXPECT_EQ((observer_.backlog_changes), (std::vector<bool>{true, false}));
  ASSERT_EQ(observer_.commits.size(), 1u);
  EXPECT_EQ(observer_.commits[0].points, 300u);
  auto stored = store->load_points(1, 0, 1000);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->size(), 300u);
  flusher.cancel();
}

}  // namespace
}  // namespace vapor::store
