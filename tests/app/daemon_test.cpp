// vapord as a user meets it: its command line, --check-config, reloads and refusals.

#include <signal.h>

#include <gtest/gtest.h>

#include "daemon_fixture.hpp"

namespace vapor::testing {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(DaemonCommandLine, VersionAndHelp) {
  const auto version = run_command(vapord_path(), {"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_TRUE(contains(version.output, "vapord 0.1.0")) << version.output;

  const auto help = run_command(vapord_path(), {"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_TRUE(contains(help.output, "--check-config")) << help.output;

  const auto bad = run_command(vapord_path(), {"--frobnicate"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_TRUE(contains(bad.output, "unknown argument '--frobnicate'")) << bad.output;
}

TEST(DaemonCheckConfig, PrintsEveryLocatedErrorAndFails) {
  TempDir dir;
  write_file(dir / "vapord.yaml", test_daemon_config(dir));
  write_file(dir / "jobs.yaml",
             "jobs:\n"
             "  - name: ok-job\n"
             "    epochs: 2\n"
             "  - name: bad-epochs\n"
             "    epochs: ten\n"
             "  - name: bad-rate\n"
             "    epochs: 1\n"
             "    learning_rate: -1\n");
  const auto result =
      run_command(vapord_path(), {"--check-config", "--config", (dir / "vapord.yaml").string()});
  EXPECT_EQ(result.status, 1);
  const auto queue = (dir / "jobs.yaml").string();
  EXPECT_TRUE(contains(result.output,
                       queue + ":5:13: jobs[1].epochs: expected a positive integer, got \"ten\""))
      << result.output;
  EXPECT_TRUE(contains(result.output, queue + ":8:20: jobs[2].learning_rate:")) << result.output;
}

TEST(DaemonCommandLine, VersionNamesTheRevisionThatWasBuilt) {
  // Read at build time (cmake/BuildRevision.cmake), not when the build was configured.
  const std::filesystem::path git = "/usr/bin/git";
  if (!std::filesystem::exists(git)) GTEST_SKIP() << "no git to compare with";
  const auto head = run_command(git, {"-C", VAPOR_SOURCE_DIR, "rev-parse", "--short=12", "HEAD"});
  if (head.status != 0) GTEST_SKIP() << "not a git checkout: " << head.output;
  const std::string revision = head.output.substr(0, head.output.find('\n'));
  const auto version = run_command(vapord_path(), {"--version"});
  EXPECT_TRUE(contains(version.output, "(revision " + revision + ")")) << version.output;
}

TEST(DaemonCheckConfig, AcceptsTheShippedConfigs) {
  for (const char* config : {"config/demo/vapord.yaml"}) {
    const auto path = std::filesystem::path(VAPOR_SOURCE_DIR) / config;
    const auto result = run_command(vapord_path(), {"--check-config", "--config", path.string()});
    EXPECT_EQ(result.status, 0) << config << ": " << result.output;
    EXPECT_TRUE(contains(result.output, "6 jobs ok")) << result.output;
  }
}

TEST(DaemonCheckConfig, BadDaemonConfigIsLocated) {
  TempDir dir;
  write_file(dir / "vapord.yaml", "scheduler:\n  max_concurrent: many\n");
  const auto result =
      run_command(vapord_path(), {"--check-config", "--config", (dir / "vapord.yaml").string()});
  EXPECT_EQ(result.status, 1);
  EXPECT_TRUE(contains(result.output, ":2:19: scheduler.max_concurrent:")) << result.output;
}

TEST(DaemonStart, AConfigThatDoesNotLoadExitsTwoWhichTheUnitDoesNotRestart) {
  // systemd/vapord.service has RestartPreventExitStatus=2: only a config error may exit 2.
  TempDir dir;
  write_file(dir / "vapord.yaml", "scheduler:\n  max_concurrent: many\n");
  const auto result = run_command(vapord_path(), {"--config", (dir / "vapord.yaml").string()});
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "vapord not started")) << result.output;
}

class RunningDaemon : public ::testing::Test {
 protected:
  void start(const std::string& queue, const std::string& extra_config = "") {
    write_file(dir_ / "jobs.yaml", queue);
    write_file(dir_ / "vapord.yaml", test_daemon_config(dir_, extra_config));
    daemon_ = std::make_unique<ChildProcess>(
        vapord_path(), std::vector<std::string>{"--config", (dir_ / "vapord.yaml").string()},
        dir_ / "vapord.log");
  }
  std::map<std::string, JobRow> jobs() const { return read_jobs(dir_ / "vapor.db"); }
  std::string log() const { return read_file(dir_ / "vapord.log"); }
  void stop_gracefully() {
    daemon_->signal(SIGTERM);
    EXPECT_EQ(daemon_->wait_for(5s), 0) << log();
  }

  TempDir dir_;
  std::unique_ptr<ChildProcess> daemon_;
};

constexpr const char* long_job = "  - name: long\n    epochs: 1\n    steps_per_epoch: 100000\n"
                                 "    step_interval: 10ms\n";

TEST_F(RunningDaemon, SighupAddsNewJobsWhileOthersRun) {
  start(std::string("jobs:\n") + long_job);
  ASSERT_TRUE(eventually([&] { return jobs()["long"].step > 10; }, 10s)) << log();
  write_file(dir_ / "jobs.yaml", std::string("jobs:\n") + long_job +
                                     "  - name: added\n    epochs: 1\n    steps_per_epoch: 20\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return jobs()["added"].state == "complete"; }, 10s)) << log();
  EXPECT_TRUE(eventually([&] { return contains(log(), "loaded (SIGHUP)"); }, 5s)) << log();
  EXPECT_EQ(jobs()["long"].state, "running");
  stop_gracefully();
}

TEST_F(RunningDaemon, ABadReloadChangesNothingAndSaysWhy) {
  start(std::string("jobs:\n") + long_job);
  ASSERT_TRUE(eventually([&] { return jobs()["long"].step > 10; }, 10s)) << log();
  // One valid new job and one broken one: all or nothing, so neither is added.
  write_file(dir_ / "jobs.yaml", std::string("jobs:\n") + long_job +
                                     "  - name: valid-new\n    epochs: 1\n"
                                     "  - name: broken\n    epochs: ten\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return contains(log(), "not loaded (SIGHUP); nothing changed"); },
                         5s))
      << log();
  const auto step_at_reload = jobs()["long"].step;
  ASSERT_TRUE(eventually([&] { return jobs()["long"].step > step_at_reload + 20; }, 10s))
      << "the running job keeps stepping";
  EXPECT_EQ(jobs().count("broken"), 0u);
  EXPECT_EQ(jobs().count("valid-new"), 0u) << "a failed reload adds nothing";
  EXPECT_TRUE(contains(log(), "jobs[2].epochs: expected a positive integer")) << log();
  EXPECT_EQ(jobs()["long"].state, "running");
  stop_gracefully();
}

TEST_F(RunningDaemon, SavingTheQueueFileAddsJobsWithoutASignal) {
  start(std::string("jobs:\n") + long_job);
  ASSERT_TRUE(eventually([&] { return jobs().count("long") == 1; }, 10s)) << log();
  // Write a new file and rename it over the old one, as editors do.
  write_file(dir_ / "jobs.yaml.new", std::string("jobs:\n") + long_job +
                                         "  - name: watched\n    epochs: 1\n    steps_per_epoch: 5\n");
  std::filesystem::rename(dir_ / "jobs.yaml.new", dir_ / "jobs.yaml");
  EXPECT_TRUE(eventually([&] { return jobs()["watched"].state == "complete"; }, 10s)) << log();
  stop_gracefully();
}

TEST_F(RunningDaemon, ManualJobWaitsQueued) {
  start("jobs:\n  - name: manual\n    epochs: 1\n    start: manual\n"
        "  - name: auto\n    epochs: 1\n    steps_per_epoch: 10\n");
  ASSERT_TRUE(eventually([&] { return jobs()["auto"].state == "complete"; }, 10s)) << log();
  EXPECT_EQ(jobs()["manual"].state, "queued");
  EXPECT_EQ(jobs()["manual"].step, 0);
  stop_gracefully();
}

TEST_F(RunningDaemon, LogsOneLinePerTransitionWithTheReason) {
  start("jobs:\n  - name: doomed\n    epochs: 1\n    steps_per_epoch: 50\n"
        "    faults: {fail_at_step: 20}\n");
  ASSERT_TRUE(eventually([&] { return jobs()["doomed"].state == "failed"; }, 10s)) << log();
  stop_gracefully();
  const auto text = log();
  EXPECT_TRUE(contains(text, "job 1 doomed: queued -> running")) << text;
  EXPECT_TRUE(contains(text, "job 1 doomed: running -> failed (reason: crashed)")) << text;
  EXPECT_TRUE(contains(text, "job 1 doomed: step 1/50")) << text;
}

TEST(DaemonStore, RefusesACorruptDatabaseAndLeavesItUntouched) {
  TempDir dir;
  write_file(dir / "jobs.yaml", "jobs: []\n");
  write_file(dir / "vapord.yaml", test_daemon_config(dir));
  const std::string garbage(8192, '\x5a');
  write_file(dir / "vapor.db", garbage);
  const auto result = run_command(vapord_path(), {"--config", (dir / "vapord.yaml").string()});
  EXPECT_NE(result.status, 0);
  EXPECT_TRUE(contains(result.output, (dir / "vapor.db").string())) << result.output;
  EXPECT_TRUE(contains(result.output, "not started")) << result.output;
  EXPECT_EQ(read_file(dir / "vapor.db"), garbage);
}

}  // namespace
}  // namespace vapor::testing
