// Kill vapord at random moments (SIGKILL included) and restart it: the finished points table must
// equal an uninterrupted run's, row for row, and the database must stay intact.

#include <signal.h>

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <tuple>

#include "daemon_fixture.hpp"

namespace vapor::testing {
namespace {

using namespace std::chrono_literals;

// Four jobs, two slots: at any kill some jobs are queued, some running, some finished.
const char* const queue_yaml = R"(jobs:
  - name: completes
    epochs: 4
    steps_per_epoch: 60
    step_interval: 8ms
  - name: crashes
    epochs: 3
    steps_per_epoch: 60
    step_interval: 10ms
    faults: {fail_at_step: 130}
  - name: goes-nan
    epochs: 2
    steps_per_epoch: 90
    step_interval: 6ms
    priority: 1
    faults: {nan_at_step: 150}
  - name: random-crash
    epochs: 5
    steps_per_epoch: 50
    step_interval: 8ms
    seed: 12345
    faults: {fail_probability: 0.004}
)";

using PointRow = std::tuple<std::string, std::int64_t, std::int64_t, std::string, double>;

/// Every point as (job name, step, epoch, loss as exact text or NULL, accuracy).
std::vector<PointRow> read_points(const std::filesystem::path& db_path) {
  auto db = store::Database::open(db_path, store::Database::Mode::read_only);
  EXPECT_TRUE(db) << db.error().message;
  std::vector<PointRow> rows;
  auto statement = store::Statement::prepare(
      *db,
      "SELECT j.name, p.step, p.epoch, quote(p.loss), p.accuracy FROM points p "
      "JOIN jobs j ON j.id = p.job_id ORDER BY j.name, p.step");
  EXPECT_TRUE(statement);
  while (true) {
    auto row = statement->step();
    if (!row || !*row) break;
    rows.emplace_back(statement->column_text(0), statement->column_int(1),
                      statement->column_int(2), statement->column_text(3),
                      statement->column_double(4));
  }
  return rows;
}

std::string integrity(const std::filesystem::path& db_path) {
  auto db = store::Database::open(db_path, store::Database::Mode::read_only);
  if (!db) return db.error().message;
  auto result = db->query_text("PRAGMA integrity_check");
  return result ? *result : result.error().message;
}

/// Every job's transitions as "from->to(reason)" strings, in order.
std::map<std::string, std::vector<std::string>> read_transitions(const std::filesystem::path& db_path) {
  auto db = store::Database::open(db_path, store::Database::Mode::read_only);
  EXPECT_TRUE(db) << db.error().message;
  std::map<std::string, std::vector<std::string>> transitions;
  auto statement = store::Statement::prepare(
      *db,
      "SELECT j.name, t.from_state, t.to_state, t.reason FROM transitions t "
      "JOIN jobs j ON j.id = t.job_id ORDER BY t.id");
  EXPECT_TRUE(statement);
  while (true) {
    auto row = statement->step();
    if (!row || !*row) break;
    transitions[statement->column_text(0)].push_back(statement->column_text(1) + "->" +
                                                     statement->column_text(2) + "(" +
                                                     statement->column_text(3) + ")");
  }
  return transitions;
}

struct RunOutcome {
  std::map<std::string, std::vector<std::string>> transitions;
  std::string log;
  std::vector<PointRow> points;
  std::map<std::string, JobRow> jobs;
  int kills_mid_run = 0;  ///< kills that left a job running with committed steps behind it
};

/// Runs the queue to the end, SIGKILLing vapord at each of `kill_after` and restarting it.
RunOutcome run_queue(const std::vector<std::chrono::milliseconds>& kill_after) {
  TempDir dir;
  write_file(dir / "jobs.yaml", queue_yaml);
  write_file(dir / "vapord.yaml", test_daemon_config(dir));
  const std::vector<std::string> args{"--config", (dir / "vapord.yaml").string()};

  int kills_mid_run = 0;
  for (const auto delay : kill_after) {
    const auto before = committed_steps(dir / "vapor.db");
    ChildProcess daemon(vapord_path(), args, dir / "vapord.log");
    // Kill only once this run has committed progress, then after a random extra delay.
    EXPECT_TRUE(eventually([&] { return committed_steps(dir / "vapor.db") > before; }, 20s))
        << read_file(dir / "vapord.log");
    std::this_thread::sleep_for(delay);
    daemon.signal(SIGKILL);
    EXPECT_EQ(daemon.wait_for(5s), 128 + SIGKILL);
    for (const auto& [name, row] : read_jobs(dir / "vapor.db")) {
      if (row.state == "running" && row.step > 0) {
        ++kills_mid_run;
        break;
      }
    }
  }
  ChildProcess daemon(vapord_path(), args, dir / "vapord.log");
  const bool finished = wait_all_finished(dir / "vapor.db", 4, 60s);
  EXPECT_TRUE(finished) << read_file(dir / "vapord.log");
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_for(5s), 0) << "a graceful stop exits 0 within 5 s";
  EXPECT_EQ(integrity(dir / "vapor.db"), "ok");
  return {read_transitions(dir / "vapor.db"), read_file(dir / "vapord.log"),
          read_points(dir / "vapor.db"), read_jobs(dir / "vapor.db"), kills_mid_run};
}

TEST(CrashResume, SigkillAtRandomMomentsGivesTheSamePointsAsAnUninterruptedRun) {
  const auto reference = run_queue({});
  ASSERT_FALSE(reference.points.empty());
  EXPECT_EQ(reference.jobs.at("completes").state, "complete");
  EXPECT_EQ(reference.jobs.at("completes").step, 240);
  EXPECT_EQ(reference.jobs.at("crashes").state, "failed");
  EXPECT_EQ(reference.jobs.at("crashes").reason, "crashed");
  EXPECT_EQ(reference.jobs.at("crashes").step, 129);
  EXPECT_EQ(reference.jobs.at("goes-nan").reason, "nonfinite_loss");

  const auto seed = std::random_device{}();
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(0, 150);
  std::vector<std::chrono::milliseconds> kills;
  for (int i = 0; i < 5; ++i) kills.emplace_back(delay_ms(random));
  SCOPED_TRACE("kill schedule seed " + std::to_string(seed));

  const auto interrupted = run_queue(kills);
  EXPECT_GE(interrupted.kills_mid_run, 2) << "the kills must land while jobs run";
  EXPECT_NE(interrupted.log.find("resuming after step"), std::string::npos)
      << "a restart must resume a running job, not start it over";
  // One start per job: a resumed job continues; it is never queued and started again.
  EXPECT_EQ(interrupted.transitions, reference.transitions);
  EXPECT_EQ(interrupted.jobs, reference.jobs);
  ASSERT_EQ(interrupted.points.size(), reference.points.size());
  for (std::size_t i = 0; i < reference.points.size(); ++i) {
    ASSERT_EQ(interrupted.points[i], reference.points[i]) << "row " << i;
  }
}

}  // namespace
}  // namespace vapor::testing
