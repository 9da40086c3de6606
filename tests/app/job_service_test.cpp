#include "app/job_service.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "app/systemd_lifecycle.hpp"
#include "metrics/vapor_metrics.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "store/sqlite_job_store.hpp"
#include "support/daemon_process.hpp"
#include "support/job_specs.hpp"

namespace vapor::app {
namespace {

using std::chrono::milliseconds;

/// One daemon's worth of job bookkeeping over a SQLite file in a temp folder: the same store,
/// scheduler, metrics and JobService the app wires, driven by a manual clock.
class Daemon {
 public:
  Daemon(const testing::TempDir& dir, std::size_t max_jobs = 100)
      : store_(store::SqliteJobStore::open({dir / "vapor.db"}).value()),
        scheduler_({2, std::chrono::seconds(60), max_jobs}, clock_),
        jobs_({config::SpecDefaults{milliseconds(100)}, max_jobs, dir / "jobs.yaml", 1 << 20,
               (dir / "vapor.db").string()},
              scheduler_, [this](const store::NewJob& job) { store_->add_job(job); }, metrics_,
              clock_, [this] { ++rearms_; }) {
    scheduler_.add_listener(*store_);
    scheduler_.add_listener(metrics_);
  }

  void run_for(milliseconds total) {
    for (milliseconds elapsed{0}; elapsed < total; elapsed += milliseconds(10)) {
      clock_.advance(milliseconds(10));
      scheduler_.advance();
    }
  }

  /// vapor_config_last_reload_successful as /metrics shows it.
  std::string reload_metric() const {
    const std::string text = metrics_.render();
    const std::string name = "\nvapor_config_last_reload_successful ";
    const auto at = text.find(name);
    return at == std::string::npos ? "<absent>" : text.substr(at + name.size(), 1);
  }

  runtime::ManualClock clock_;
  std::unique_ptr<store::SqliteJobStore> store_;
  runtime::Scheduler scheduler_;
  metrics::VaporMetrics metrics_{{"test", "test"}, std::chrono::minutes(5)};
  JobService jobs_;
  int rearms_ = 0;
};

core::JobSpec manual_spec(std::string name) {
  auto spec = testing::simulated_job(std::move(name), 50, milliseconds(100),
                                     core::StartMode::manual);
  spec.model = "resnet50";
  return spec;
}

class JobServiceTest : public ::testing::Test {
 protected:
  void write_queue(const std::string& jobs) {
    testing::write_file(dir_ / "jobs.yaml", "jobs:\n" + jobs);
  }
  testing::TempDir dir_;
};

TEST_F(JobServiceTest, TheQueueFileAddsNewJobsAndNeverChangesOrDeletesOnes) {
  Daemon daemon(dir_);
  write_queue("  - {name: alpha, epochs: 1, steps_per_epoch: 10}\n"
              "  - {name: beta, epochs: 2, start: manual}\n");
  ASSERT_TRUE(daemon.jobs_.load_queue("test"));
  EXPECT_TRUE(daemon.jobs_.queue_loaded());
  EXPECT_EQ(daemon.reload_metric(), "1");
  ASSERT_NE(daemon.scheduler_.find("alpha"), nullptr);
  EXPECT_EQ(daemon.scheduler_.find("alpha")->id, 1);
  EXPECT_EQ(daemon.scheduler_.find("beta")->id, 2);
  EXPECT_EQ(daemon.scheduler_.find("alpha")->state, core::JobState::running);
  EXPECT_GT(daemon.rearms_, 0) << "the driver learns of the new deadline";

  // beta changed, alpha gone from the file, gamma new: only gamma is added.
  write_queue("  - {name: beta, epochs: 7, start: manual}\n"
              "  - {name: gamma, epochs: 1}\n");
  ASSERT_TRUE(daemon.jobs_.load_queue("test"));
  EXPECT_EQ(daemon.scheduler_.jobs().size(), 3u);
  EXPECT_EQ(daemon.scheduler_.find("beta")->spec.epochs, 2u) << "the recorded spec is kept";
  EXPECT_EQ(daemon.scheduler_.find("gamma")->id, 3);
  EXPECT_NE(daemon.scheduler_.find("alpha"), nullptr) << "history is never deleted";
}

TEST_F(JobServiceTest, ARefusedQueueFileChangesNothingAndSaysSo) {
  Daemon daemon(dir_, 3);
  write_queue("  - {name: alpha, epochs: 1}\n");
  ASSERT_TRUE(daemon.jobs_.load_queue("test"));

  write_queue("  - {name: alpha, epochs: 1}\n  - {name: beta, epochs: ten}\n");
  EXPECT_FALSE(daemon.jobs_.load_queue("test"));
  EXPECT_EQ(daemon.reload_metric(), "0");
  EXPECT_FALSE(daemon.jobs_.last_reload_successful());
  EXPECT_TRUE(daemon.jobs_.queue_loaded()) << "it was loaded once; the old jobs stand";
  EXPECT_EQ(daemon.scheduler_.jobs().size(), 1u);

  // Three new jobs would pass max_jobs = 3: none is added, not the first two of them.
  write_queue("  - {name: alpha, epochs: 1}\n  - {name: b, epochs: 1}\n"
              "  - {name: c, epochs: 1}\n  - {name: d, epochs: 1}\n");
  EXPECT_FALSE(daemon.jobs_.load_queue("test"));
  EXPECT_EQ(daemon.scheduler_.jobs().size(), 1u);
  EXPECT_EQ(daemon.scheduler_.find("b"), nullptr);

  write_queue("  - {name: alpha, epochs: 1}\n  - {name: b, epochs: 1}\n");
  EXPECT_TRUE(daemon.jobs_.load_queue("test"));
  EXPECT_EQ(daemon.reload_metric(), "1");
  EXPECT_TRUE(daemon.jobs_.last_reload_successful());
}

TEST_F(JobServiceTest, SubmitDecidesNamesAndLimitsInOnePlace) {
  Daemon daemon(dir_, 2);
  core::JobId id = 0;
  EXPECT_FALSE(daemon.jobs_.submit(manual_spec("alpha"), id));
  EXPECT_EQ(id, 1);

  auto taken = daemon.jobs_.submit(manual_spec("alpha"), id);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->kind, http::ControlFailure::conflict);
  EXPECT_NE(taken->message.find("(id 1)"), std::string::npos) << taken->message;

  EXPECT_FALSE(daemon.jobs_.submit(manual_spec("beta"), id));
  auto full = daemon.jobs_.submit(manual_spec("gamma"), id);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->kind, http::ControlFailure::unavailable);
  EXPECT_NE(full->message.find("scheduler.max_jobs = 2"), std::string::npos) << full->message;

  daemon.jobs_.close();
  auto stopping = daemon.jobs_.submit(manual_spec("delta"), id);
  ASSERT_TRUE(stopping);
  EXPECT_EQ(stopping->kind, http::ControlFailure::unavailable);
}

TEST_F(JobServiceTest, StartAndStopFollowTheStatesAndKnowUnknownIds) {
  Daemon daemon(dir_);
  core::JobId id = 0;
  ASSERT_FALSE(daemon.jobs_.submit(manual_spec("alpha"), id));
  daemon.run_for(milliseconds(300));
  EXPECT_EQ(daemon.scheduler_.find(id)->state, core::JobState::queued);

  EXPECT_FALSE(daemon.jobs_.start(id));
  daemon.run_for(milliseconds(300));
  EXPECT_EQ(daemon.scheduler_.find(id)->state, core::JobState::running);
  EXPECT_EQ(daemon.jobs_.counts().running, 1u);

  EXPECT_FALSE(daemon.jobs_.stop(id));
  auto again = daemon.jobs_.stop(id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kind, http::ControlFailure::conflict);
  auto unknown = daemon.jobs_.start(42);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->kind, http::ControlFailure::not_found);
  const JobCounts counts = daemon.jobs_.counts();
  EXPECT_EQ(counts.running, 0u);
  EXPECT_EQ(counts.done, 1u);
  EXPECT_EQ(counts.failed, 0u);
}

TEST_F(JobServiceTest, RestoreResumesJobsWhereTheStoreLeftThemAndIdsContinue) {
  std::uint64_t committed_step = 0;
  {
    Daemon first(dir_);
    write_queue("  - {name: alpha, epochs: 1, steps_per_epoch: 1000}\n"
                "  - {name: beta, epochs: 1, start: manual}\n");
    ASSERT_TRUE(first.jobs_.load_queue("test"));
    first.run_for(milliseconds(1000));
    committed_step = first.scheduler_.find("alpha")->step;
    ASSERT_GT(committed_step, 5u);
    ASSERT_TRUE(first.store_->flush());
  }
  Daemon second(dir_);
  ASSERT_TRUE(second.jobs_.restore(*second.store_));
  const runtime::Job* alpha = second.scheduler_.find("alpha");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->state, core::JobState::running);
  EXPECT_EQ(alpha->step, committed_step) << "resumes after its last committed step";
  EXPECT_GT(alpha->loss, 0.0) << "its last point's loss is restored";
  EXPECT_EQ(second.scheduler_.find("beta")->state, core::JobState::queued);

  core::JobId id = 0;
  ASSERT_FALSE(second.jobs_.submit(manual_spec("gamma"), id));
  EXPECT_EQ(id, 3) << "ids continue after the restored ones";
}

TEST_F(JobServiceTest, AJobThatCannotBeRestoredKeepsItsNameAndItsHistory) {
  {
    auto store = store::SqliteJobStore::open({dir_ / "vapor.db"}).value();
    store->add_job({1, "legacy", R"({"name":"legacy","epochs":"many"})", core::WallTime{}});
    store->add_job({2, "alpha", R"({"name":"alpha","epochs":1})", core::WallTime{}});
    ASSERT_TRUE(store->flush());
  }
  Daemon daemon(dir_);
  ASSERT_TRUE(daemon.jobs_.restore(*daemon.store_));
  EXPECT_EQ(daemon.scheduler_.find("legacy"), nullptr);
  ASSERT_NE(daemon.scheduler_.find("alpha"), nullptr);

  write_queue("  - {name: legacy, epochs: 1}\n  - {name: beta, epochs: 1}\n");
  ASSERT_TRUE(daemon.jobs_.load_queue("test"));
  EXPECT_EQ(daemon.scheduler_.find("legacy"), nullptr) << "the queue entry is ignored";
  EXPECT_EQ(daemon.scheduler_.find("beta")->id, 3);

  core::JobId id = 0;
  auto taken = daemon.jobs_.submit(manual_spec("legacy"), id);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->kind, http::ControlFailure::conflict);
  EXPECT_NE(taken->message.find("could not be restored"), std::string::npos) << taken->message;
  auto stored = daemon.store_->load_jobs();
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->front().name, "legacy") << "its row stays in the database";
}

/// vapor_jobs{state="..."} as /metrics shows it.
std::string jobs_in_state(const Daemon& daemon, const std::string& state) {
  const std::string text = daemon.metrics_.render();
  const std::string name = "\nvapor_jobs{state=\"" + state + "\"} ";
  const auto at = text.find(name);
  return at == std::string::npos ? "<absent>" : text.substr(at + name.size(), 1);
}

TEST_F(JobServiceTest, FinishedJobsMakeRoomUnderMaxJobsFirstFinishedFirstAndKeepTheirNames) {
  Daemon daemon(dir_, 3);
  core::JobId id = 0;
  for (const char* name : {"a", "b", "c"}) ASSERT_FALSE(daemon.jobs_.submit(manual_spec(name), id));
  daemon.clock_.advance(milliseconds(10));
  ASSERT_FALSE(daemon.jobs_.stop(2));  // b finishes first
  daemon.clock_.advance(milliseconds(10));
  ASSERT_FALSE(daemon.jobs_.stop(1));

  ASSERT_FALSE(daemon.jobs_.submit(manual_spec("d"), id)) << "a finished job makes room";
  EXPECT_EQ(daemon.scheduler_.find("b"), nullptr) << "the one that finished first goes";
  EXPECT_NE(daemon.scheduler_.find("a"), nullptr);
  EXPECT_EQ(daemon.scheduler_.jobs().size(), 3u);
  EXPECT_EQ(jobs_in_state(daemon, "stopped"), "1");

  EXPECT_EQ(daemon.jobs_.retired("b"), 2) << "by name, for the history endpoints";
  EXPECT_EQ(daemon.jobs_.retired("2"), 2);
  EXPECT_EQ(daemon.jobs_.retired("a"), std::nullopt);
  EXPECT_EQ(daemon.jobs_.retired("1"), std::nullopt);
  auto taken = daemon.jobs_.submit(manual_spec("b"), id);
  ASSERT_TRUE(taken) << "its name stays taken: the database still holds it";
  EXPECT_EQ(taken->kind, http::ControlFailure::conflict);
  EXPECT_NE(taken->message.find("no longer held in memory"), std::string::npos) << taken->message;
  write_queue("  - {name: b, epochs: 1}\n");
  EXPECT_TRUE(daemon.jobs_.load_queue("test")) << "a queue file still listing it is fine";
  EXPECT_EQ(daemon.scheduler_.find("b"), nullptr) << "and does not bring it back";

  ASSERT_FALSE(daemon.jobs_.submit(manual_spec("e"), id));
  EXPECT_EQ(daemon.scheduler_.find("a"), nullptr);
  auto full = daemon.jobs_.submit(manual_spec("f"), id);
  ASSERT_TRUE(full) << "c, d and e are all queued: nothing can go";
  EXPECT_EQ(full->kind, http::ControlFailure::unavailable);
  EXPECT_NE(full->message.find("raise scheduler.max_jobs"), std::string::npos) << full->message;
  EXPECT_EQ(daemon.scheduler_.jobs().size(), 3u);
}

TEST_F(JobServiceTest, ARestoreBeyondMaxJobsHoldsTheActiveAndLatestFinishedJobs) {
  {
    Daemon first(dir_, 10);
    core::JobId id = 0;
    for (const char* name : {"a", "b", "c", "d", "e"}) {
      ASSERT_FALSE(first.jobs_.submit(manual_spec(name), id));
    }
    for (const core::JobId finishing : {3, 1, 4, 2}) {  // e stays queued
      first.clock_.advance(milliseconds(10));
      ASSERT_FALSE(first.jobs_.stop(finishing));
    }
    ASSERT_TRUE(first.store_->flush());
  }
  Daemon second(dir_, 3);
  ASSERT_TRUE(second.jobs_.restore(*second.store_));
  std::vector<std::string> held;
  for (const auto& [id, job] : second.scheduler_.jobs()) held.push_back(job.spec.name);
  EXPECT_EQ(held, (std::vector<std::string>{"b", "d", "e"}))
      << "the queued job and the two that finished last";
  core::JobId id = 0;
  auto taken = second.jobs_.submit(manual_spec("c"), id);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->kind, http::ControlFailure::conflict);
  ASSERT_FALSE(second.jobs_.submit(manual_spec("f"), id)) << "not 503 forever: d makes room";
  EXPECT_EQ(id, 6) << "ids continue after every stored job";
}

TEST(StatusLineTest, SaysTheCountsAndEveryTroubleAnOperatorMustSee) {
  DaemonStatus status;
  status.queued = 2;
  status.running = 3;
  status.done = 10;
  status.failed = 1;
  status.queue_loaded = true;
  status.last_reload_successful = true;
  status.queue_path = "/etc/vapor/jobs.yaml";
  EXPECT_EQ(status_line(status), "3 running, 2 queued, 10 done (1 failed)");

  status.last_reload_successful = false;
  EXPECT_EQ(status_line(status),
            "3 running, 2 queued, 10 done (1 failed); the last queue reload failed, see the log");
  status.queue_loaded = false;
  status.jobs_paused = true;
  status.store_failing = true;
  EXPECT_EQ(status_line(status),
            "3 running, 2 queued, 10 done (1 failed); queue /etc/vapor/jobs.yaml not loaded, see "
            "the log; jobs paused: the store is behind; store commits failing");
}

}  // namespace
}  // namespace vapor::app
