#include "runtime/scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "core/simulator.hpp"
#include "support/job_specs.hpp"

namespace vapor::runtime {
namespace {

using core::JobState;
using std::chrono::milliseconds;
using std::chrono::seconds;

/// Records every event and checks the concurrency limit as it goes.
class Recorder final : public core::JobEventListener {
 public:
  void on_step(const core::StepRecorded& event) override { steps.push_back(event); }
  void on_state_changed(const core::JobStateChanged& event) override {
    states.push_back(event);
    if (event.to == JobState::running) ++running;
    if (event.from == JobState::running) --running;
    max_running = std::max(max_running, running);
  }
  void on_start_requested(core::JobId id) override { start_requests.push_back(id); }

  [[nodiscard]] std::vector<std::uint64_t> steps_of(core::JobId id) const {
    std::vector<std::uint64_t> out;
    for (const auto& s : steps) {
      if (s.job_id == id) out.push_back(s.step);
    }
    return out;
  }
  [[nodiscard]] std::vector<core::JobId> start_order() const {
    std::vector<core::JobId> out;
    for (const auto& s : states) {
      if (s.to == JobState::running) out.push_back(s.job_id);
    }
    return out;
  }

  std::vector<core::StepRecorded> steps;
  std::vector<core::JobStateChanged> states;
  std::vector<core::JobId> start_requests;
  int running = 0;
  int max_running = 0;
};

core::JobSpec spec(std::string name, std::uint64_t steps = 20, milliseconds interval = milliseconds(100)) {
  return testing::simulated_job(std::move(name), steps, interval);
}

class SchedulerTest : public ::testing::Test {
 protected:
  explicit SchedulerTest(SchedulerOptions options = {2, seconds(5), 100})
      : scheduler_(options, clock_) {
    scheduler_.add_listener(recorder_);
  }

  void add(core::JobId id, core::JobSpec s) {
    ASSERT_TRUE(scheduler_.add_job(id, std::move(s), clock_.wall_now()));
  }

  /// Moves the fake clock in small increments, running the scheduler as a driver would.
  void run_for(milliseconds total, milliseconds tick = milliseconds(10)) {
    for (milliseconds elapsed{0}; elapsed < total; elapsed += tick) {
      clock_.advance(tick);
      scheduler_.advance();
    }
  }

  /// Jumps straight from deadline to deadline (how the Asio driver behaves).
  void run_until_idle(int max_wakes = 100000) {
    for (int i = 0; i < max_wakes; ++i) {
      const auto deadline = scheduler_.next_deadline();
      if (!deadline) return;
      clock_.advance(std::max(*deadline - clock_.now(), SteadyTime::duration::zero()));
      scheduler_.advance();
    }
    FAIL() << "scheduler never went idle";
  }

  JobState state(core::JobId id) const { return scheduler_.find(id)->state; }

  ManualClock clock_;
  Recorder recorder_;
  Scheduler scheduler_;
};

TEST_F(SchedulerTest, StepsFallDueAtTheJobsInterval) {
  add(1, spec("a", 100, milliseconds(100)));
  EXPECT_EQ(state(1), JobState::running);
  run_for(milliseconds(1000));
  EXPECT_EQ(recorder_.steps_of(1).size(), 10u);
  const auto& first = recorder_.steps.front();
  EXPECT_EQ(first.step, 1u);
  EXPECT_DOUBLE_EQ(first.progress, 0.01);
  EXPECT_EQ(first.loss, core::simulate_step(scheduler_.find(1)->spec, 1).loss);
}

TEST_F(SchedulerTest, NeverRunsMoreThanMaxConcurrentAndDrainsTheQueue) {
  for (core::JobId id = 1; id <= 6; ++id) add(id, spec("job" + std::to_string(id), 10));
  EXPECT_EQ(scheduler_.running_count(), 2u);
  EXPECT_EQ(state(3), JobState::queued);
  run_until_idle();
  EXPECT_EQ(recorder_.max_running, 2);
  for (core::JobId id = 1; id <= 6; ++id) {
    EXPECT_EQ(state(id), JobState::complete) << id;
    const auto steps = recorder_.steps_of(id);
    ASSERT_EQ(steps.size(), 10u) << id;
    for (std::size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], i + 1);
  }
}

TEST_F(SchedulerTest, HigherPriorityStartsFirstAndTiesGoToTheOlderJob) {
  // Fill both slots first so the rest queue up.
  add(1, spec("blocker1", 5));
  add(2, spec("blocker2", 5));
  auto low = spec("low", 5);
  low.priority = -1;
  auto high = spec("high", 5);
  high.priority = 10;
  auto mid_old = spec("mid-old", 5);
  mid_old.priority = 3;
  auto mid_new = spec("mid-new", 5);
  mid_new.priority = 3;
  add(3, low);
  add(4, mid_old);
  add(5, high);
  add(6, mid_new);
  run_until_idle();
  EXPECT_EQ(recorder_.start_order(), (std::vector<core::JobId>{1, 2, 5, 4, 6, 3}));
}

TEST_F(SchedulerTest, ManualJobWaitsForAUserStart) {
  auto manual = spec("manual", 5);
  manual.start = core::StartMode::manual;
  add(1, manual);
  run_for(seconds(10));
  EXPECT_EQ(state(1), JobState::queued);
  EXPECT_TRUE(recorder_.steps.empty());

  ASSERT_TRUE(scheduler_.start(1));
  EXPECT_EQ(state(1), JobState::running);
  EXPECT_FALSE(scheduler_.start(1)) << "a running job cannot be started again";
  run_until_idle();
  EXPECT_EQ(state(1), JobState::complete);
  EXPECT_FALSE(scheduler_.start(1));
}

TEST_F(SchedulerTest, ManualStartStillRespectsTheConcurrencyLimit) {
  add(1, spec("a", 50));
  add(2, spec("b", 50));
  auto manual = spec("manual", 5);
  manual.start = core::StartMode::manual;
  add(3, manual);
  ASSERT_TRUE(scheduler_.start(3));
  EXPECT_EQ(state(3), JobState::queued);
  run_until_idle();
  EXPECT_EQ(state(3), JobState::complete);
  EXPECT_EQ(recorder_.max_running, 2);
}

TEST_F(SchedulerTest, StopEndsARunningJobAndFreesItsSlot) {
  add(1, spec("a", 100));
  add(2, spec("b", 100));
  add(3, spec("c", 10));
  run_for(milliseconds(500));
  const auto steps_before = recorder_.steps_of(1).size();
  ASSERT_TRUE(scheduler_.stop(1));
  EXPECT_EQ(state(1), JobState::stopped);
  EXPECT_EQ(state(3), JobState::running) << "the freed slot goes to the next job";
  run_until_idle();
  EXPECT_EQ(recorder_.steps_of(1).size(), steps_before) << "no step after a stop";
  EXPECT_FALSE(scheduler_.stop(1)) << "a stopped job cannot be stopped again";
  EXPECT_FALSE(scheduler_.stop(3)) << "a complete job cannot be stopped";
  EXPECT_FALSE(scheduler_.stop(42)) << "unknown job";
}

TEST_F(SchedulerTest, StopOnAQueuedJobNeverRunsIt) {
  add(1, spec("a", 10));
  add(2, spec("b", 10));
  add(3, spec("c", 10));
  ASSERT_TRUE(scheduler_.stop(3));
  run_until_idle();
  EXPECT_EQ(state(3), JobState::stopped);
  EXPECT_TRUE(recorder_.steps_of(3).empty());
}

TEST_F(SchedulerTest, StalledJobFailsAfterTheStallTimeoutAndNotBefore) {
  auto stalling = spec("stall", 100, milliseconds(100));
  stalling.faults.stall_at_step = 5;
  add(1, stalling);
  run_for(milliseconds(400));  // steps 1..4
  EXPECT_EQ(recorder_.steps_of(1).size(), 4u);
  run_for(milliseconds(4900));  // 5.3 s in; last step at 0.4 s, timeout 5 s → 5.4 s
  EXPECT_EQ(state(1), JobState::running);
  run_for(milliseconds(200));
  EXPECT_EQ(state(1), JobState::failed);
  EXPECT_EQ(scheduler_.find(1)->reason, "stalled");
  EXPECT_EQ(recorder_.steps_of(1).size(), 4u);
}

TEST_F(SchedulerTest, SlowdownPastTheStallTimeoutCountsAsAStall) {
  auto slow = spec("slow", 100, milliseconds(100));
  slow.faults.slowdown = core::Slowdown{3, 100.0};  // 10 s per step from step 3
  add(1, slow);
  run_until_idle();
  EXPECT_EQ(state(1), JobState::failed);
  EXPECT_EQ(scheduler_.find(1)->reason, "stalled");
  EXPECT_EQ(recorder_.steps_of(1).size(), 2u);
}

TEST_F(SchedulerTest, CrashFailsTheJobWithoutRecordingThatStep) {
  auto crashing = spec("crash", 100);
  crashing.faults.fail_at_step = 7;
  add(1, crashing);
  run_until_idle();
  EXPECT_EQ(state(1), JobState::failed);
  EXPECT_EQ(scheduler_.find(1)->reason, "crashed");
  EXPECT_EQ(recorder_.steps_of(1).size(), 6u);
  EXPECT_EQ(recorder_.states.back().reason, "crashed");
}

TEST_F(SchedulerTest, NonFiniteLossIsRecordedThenFailsByDefault) {
  auto nan = spec("nan", 100);
  nan.faults.nan_at_step = 9;
  add(1, nan);
  run_until_idle();
  EXPECT_EQ(state(1), JobState::failed);
  EXPECT_EQ(scheduler_.find(1)->reason, "nonfinite_loss");
  ASSERT_EQ(recorder_.steps_of(1).size(), 9u);
  EXPECT_TRUE(std::isnan(recorder_.steps.back().loss));
}

TEST_F(SchedulerTest, NonFiniteLossWithRecordPolicyKeepsTraining) {
  auto nan = spec("nan", 20);
  nan.faults.nan_at_step = 9;
  nan.on_nonfinite = core::NonFinitePolicy::record;
  add(1, nan);
  run_until_idle();
  EXPECT_EQ(state(1), JobState::complete);
  EXPECT_EQ(recorder_.steps_of(1).size(), 20u);
}

TEST_F(SchedulerTest, JobsAddedByAReloadJoinWhileOthersKeepStepping) {
  add(1, spec("a", 30));
  run_for(milliseconds(1000));
  add(2, spec("b", 10));
  add(3, spec("c", 10));
  EXPECT_EQ(state(2), JobState::running);
  EXPECT_EQ(state(3), JobState::queued);
  run_until_idle();
  const auto steps = recorder_.steps_of(1);
  ASSERT_EQ(steps.size(), 30u);
  for (std::size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], i + 1) << "no gap, no repeat";
  EXPECT_EQ(state(3), JobState::complete);
  EXPECT_FALSE(scheduler_.add_job(9, spec("a"), clock_.wall_now())) << "duplicate name";
}

TEST_F(SchedulerTest, RestoredRunningJobResumesAfterItsLastCommittedStep) {
  RestoredJob restored;
  restored.id = 4;
  restored.spec = spec("resumed", 100);
  restored.state = JobState::running;
  restored.step = 60;
  ASSERT_TRUE(scheduler_.restore_job(restored));
  EXPECT_EQ(scheduler_.running_count(), 1u);
  run_until_idle();
  const auto steps = recorder_.steps_of(4);
  ASSERT_EQ(steps.size(), 40u);
  EXPECT_EQ(steps.front(), 61u);
  EXPECT_EQ(recorder_.steps.front().loss, core::simulate_step(restored.spec, 61).loss);
  EXPECT_EQ(state(4), JobState::complete);
  EXPECT_EQ(recorder_.states.size(), 1u) << "only running → complete; no second start";
}

TEST_F(SchedulerTest, RestoredFinishedJobsStayFinished) {
  RestoredJob done;
  done.id = 1;
  done.spec = spec("done", 10);
  done.state = JobState::complete;
  done.step = 10;
  ASSERT_TRUE(scheduler_.restore_job(done));
  EXPECT_FALSE(scheduler_.next_deadline());
  EXPECT_EQ(scheduler_.max_id(), 1);
}

TEST_F(SchedulerTest, PauseHoldsEveryJobWithoutDeclaringAStall) {
  add(1, spec("a", 100));
  run_for(milliseconds(300));
  scheduler_.set_paused(true);
  const auto before = recorder_.steps.size();
  run_for(seconds(20));
  EXPECT_EQ(recorder_.steps.size(), before);
  EXPECT_EQ(state(1), JobState::running) << "a pause is not a stall";
  scheduler_.set_paused(false);
  run_until_idle();
  EXPECT_EQ(state(1), JobState::complete);
  EXPECT_EQ(recorder_.steps_of(1).size(), 100u);
}

TEST_F(SchedulerTest, EtaIsAbsentAtFirstThenMatchesTheRemainingTime) {
  add(1, spec("a", 100, milliseconds(100)));
  run_until_idle();
  const auto& steps = recorder_.steps;
  EXPECT_FALSE(steps[0].eta_seconds);
  ASSERT_TRUE(steps[10].eta_seconds);
  EXPECT_NEAR(*steps[10].eta_seconds, 89 * 0.1, 1e-6);
  EXPECT_FALSE(scheduler_.find(1)->eta_seconds()) << "a finished job has no ETA";
}

TEST_F(SchedulerTest, ALateEventLoopDoesNotMakeJobsLookStalled) {
  add(1, spec("a", 100, milliseconds(100)));
  run_for(milliseconds(500));
  clock_.advance(seconds(30));  // a suspended process: far past the 5 s stall timeout
  scheduler_.advance();
  EXPECT_EQ(state(1), JobState::running);
  run_until_idle();
  EXPECT_EQ(state(1), JobState::complete);
  EXPECT_EQ(recorder_.steps_of(1).size(), 100u);
}

TEST_F(SchedulerTest, HeldDispatchStartsByPriorityNotByOrderOfArrival) {
  {
    auto hold = scheduler_.hold_dispatch();
    auto low = spec("low", 5);
    auto high = spec("high", 5);
    high.priority = 10;
    auto higher = spec("higher", 5);
    higher.priority = 20;
    add(1, low);
    add(2, high);
    add(3, higher);
    EXPECT_EQ(scheduler_.running_count(), 0u) << "nothing starts while held";
  }
  EXPECT_EQ(recorder_.start_order(), (std::vector<core::JobId>{3, 2}));
  run_until_idle();
  EXPECT_EQ(recorder_.start_order(), (std::vector<core::JobId>{3, 2, 1}));
}

TEST_F(SchedulerTest, RestoreNeverRunsMoreThanMaxConcurrent) {
  {
    auto hold = scheduler_.hold_dispatch();
    RestoredJob queued;
    queued.id = 1;
    queued.spec = spec("queued-older", 10);
    ASSERT_TRUE(scheduler_.restore_job(queued));
    for (core::JobId id : {2, 3}) {
      RestoredJob running;
      running.id = id;
      running.spec = spec("running" + std::to_string(id), 10);
      running.state = JobState::running;
      running.step = 4;
      ASSERT_TRUE(scheduler_.restore_job(running));
    }
  }
  EXPECT_EQ(scheduler_.running_count(), 2u);
  EXPECT_EQ(state(1), JobState::queued) << "the resumed jobs hold both slots";
  run_until_idle();
  EXPECT_EQ(state(1), JobState::complete);
}

class BatchedSchedulerTest : public SchedulerTest {
 protected:
  BatchedSchedulerTest() : SchedulerTest(SchedulerOptions{100, seconds(5), 100, 50}) {}
};

TEST_F(BatchedSchedulerTest, ABacklogIsTakenInBoundedBatchesWithoutLosingSteps) {
  for (core::JobId id = 1; id <= 20; ++id) add(id, spec("job" + std::to_string(id), 40));
  clock_.advance(milliseconds(900));  // 20 jobs x 9 steps due at once: 180 steps
  scheduler_.advance();
  EXPECT_EQ(recorder_.steps.size(), 50u) << "one call takes one batch";
  ASSERT_TRUE(scheduler_.next_deadline());
  EXPECT_LE(*scheduler_.next_deadline(), clock_.now()) << "the rest is due at once";
  run_until_idle();
  for (core::JobId id = 1; id <= 20; ++id) {
    const auto steps = recorder_.steps_of(id);
    ASSERT_EQ(steps.size(), 40u) << id;
    for (std::size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i], i + 1);
  }
}

class SmallSchedulerTest : public SchedulerTest {
 protected:
  SmallSchedulerTest() : SchedulerTest(SchedulerOptions{2, seconds(5), 3}) {}
};

TEST_F(SmallSchedulerTest, RefusesJobsPastMaxJobs) {
  add(1, spec("a"));
  add(2, spec("b"));
  add(3, spec("c"));
  const auto refused = scheduler_.add_job(4, spec("d"), clock_.wall_now());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("max_jobs"), std::string::npos);
}

}  // namespace
}  // namespace vapor::runtime

namespace vapor::runtime {
namespace {

core::JobSpec real_job(std::string name, std::uint64_t planned_steps) {
  core::JobSpec s = spec(std::move(name), planned_steps);
  s.kind = core::JobKind::command;
  s.command.argv = {"train"};
  if (planned_steps == 0) s.epochs = s.steps_per_epoch = 0;
  return s;
}

/// A trainer's point: step and loss, the rest as given.
core::ReportedPoint reported(std::uint64_t step, double loss,
                             std::optional<double> accuracy = std::nullopt,
                             std::optional<double> progress = std::nullopt,
                             core::Scalars scalars = {}) {
  core::ReportedPoint point;
  point.step = step;
  point.loss = loss;
  point.accuracy = accuracy;
  point.progress = progress;
  point.scalars = std::move(scalars);
  return point;
}

TEST_F(SchedulerTest, ARealJobStepsOnlyWhenItReportsAndEndsWhenItsProcessDoes) {
  add(1, real_job("trainer", 10));
  ASSERT_EQ(state(1), JobState::running);
  run_for(milliseconds(3000));
  EXPECT_TRUE(recorder_.steps.empty()) << "no simulated steps for a real job";

  ASSERT_TRUE(scheduler_.record_point(1, reported(1, 2.0, 0.1)));
  ASSERT_TRUE(scheduler_.record_point(1, reported(3, 1.5, 0.2)));
  const auto again = scheduler_.record_point(1, reported(3, 1.4));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "step 3 does not come after step 3 (steps must increase)");
  EXPECT_EQ(recorder_.steps_of(1), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_DOUBLE_EQ(recorder_.steps.back().progress, 0.3);
  EXPECT_EQ(recorder_.steps.back().epoch, 1u);

  // Reaching the planned steps does not end it: its process does.
  for (std::uint64_t step = 4; step <= 12; ++step) {
    ASSERT_TRUE(scheduler_.record_point(1, reported(step, 1.0)));
  }
  EXPECT_EQ(state(1), JobState::running);
  EXPECT_DOUBLE_EQ(scheduler_.find(1)->progress(), 1.0);
  scheduler_.finish(1, {JobState::failed, "exit_code", 3, {}});
  EXPECT_EQ(state(1), JobState::failed);
  EXPECT_EQ(scheduler_.find(1)->reason, "exit_code");
  EXPECT_EQ(scheduler_.find(1)->exit_code, 3);
  EXPECT_FALSE(scheduler_.record_point(1, reported(13, 1.0))) << "not after it ended";
}

TEST_F(SchedulerTest, ARealJobWithoutAPlanTakesItsProgressFromItsPointsAndStallsWhenSilent) {
  add(1, real_job("unplanned", 0));
  ASSERT_TRUE(scheduler_.record_point(1, reported(1, 2.0, {}, 0.25)));
  EXPECT_DOUBLE_EQ(recorder_.steps.back().progress, 0.25);
  EXPECT_FALSE(recorder_.steps.back().eta_seconds) << "no plan, no ETA";
  run_for(milliseconds(4900));
  EXPECT_EQ(state(1), JobState::running) << "a point restarts the stall clock (5 s)";
  ASSERT_TRUE(scheduler_.record_point(1, reported(2, 1.9, {}, 0.5)));
  run_for(milliseconds(4900));
  EXPECT_EQ(state(1), JobState::running);
  run_for(milliseconds(200));
  EXPECT_EQ(state(1), JobState::failed);
  EXPECT_EQ(scheduler_.find(1)->reason, "stalled");
}

TEST_F(SchedulerTest, ANonFiniteLossFailsARealJobUnderItsPolicy) {
  add(1, real_job("diverges", 10));
  ASSERT_TRUE(scheduler_.record_point(1, reported(1, std::nan(""))));
  EXPECT_EQ(state(1), JobState::failed);
  EXPECT_EQ(scheduler_.find(1)->reason, "nonfinite_loss");
  EXPECT_EQ(recorder_.steps_of(1), (std::vector<std::uint64_t>{1})) << "the NaN point is kept";
}

TEST_F(SchedulerTest, NamedScalarsTravelWithTheirPointAndTheJobKeepsEachOnesLatestValue) {
  add(1, real_job("scalars", 10));
  ASSERT_TRUE(
      scheduler_.record_point(1, reported(1, 2.0, {}, {}, {{"lr", 0.1}, {"val_loss", 2.5}})));
  ASSERT_TRUE(scheduler_.record_point(1, reported(2, 1.8, {}, {}, {{"lr", 0.05}})));
  EXPECT_EQ(recorder_.steps.back().scalars, (core::Scalars{{"lr", 0.05}}))
      << "a point carries only what the trainer wrote at that step";
  EXPECT_EQ(scheduler_.find(1)->scalars, (core::Scalars{{"lr", 0.05}, {"val_loss", 2.5}}))
      << "val_loss keeps its value from step 1";

  // 32 names per job: a point that would bring the 33rd is refused whole.
  core::Scalars many;
  for (int i = 0; i < 30; ++i) many.push_back({"s" + std::to_string(i), 1.0});
  ASSERT_TRUE(scheduler_.record_point(1, reported(3, 1.7, {}, {}, many)));
  ASSERT_EQ(scheduler_.find(1)->scalars.size(), 32u);
  const auto refused =
      scheduler_.record_point(1, reported(4, 1.6, {}, {}, {{"lr", 0.01}, {"extra", 1}}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message,
            "named scalar \"extra\" is one name too many: job 'scalars' already reports 32 "
            "(at most 32 per job)");
  EXPECT_EQ(recorder_.steps_of(1), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(scheduler_.find(1)->scalars.front(), (core::NamedScalar{"lr", 0.05}))
      << "nothing of the refused point was taken";
  ASSERT_TRUE(scheduler_.record_point(1, reported(4, 1.6, {}, {}, {{"lr", 0.01}})));
}

TEST_F(SchedulerTest, APushJobRunsFromItsFirstPointWithoutASlotAndKeepsOneStallWakeUp) {
  add(1, spec("simulated", 1'000'000));  // the two slots taken, with early wake-ups
  add(3, spec("simulated-too", 1'000'000));
  core::JobSpec push = real_job("pushed", 0);
  push.kind = core::JobKind::push;
  push.stall_timeout = milliseconds(2000);
  add(2, push);
  EXPECT_EQ(state(2), JobState::queued);
  run_for(milliseconds(3000));
  EXPECT_EQ(state(2), JobState::queued) << "a push job waits for its first point, not a slot";
  EXPECT_FALSE(scheduler_.start(2)) << "nor for a start";

  for (std::uint64_t step = 1; step <= 10'000; ++step) {
    ASSERT_TRUE(scheduler_.record_point(2, reported(step, 1.0)));
    if (step % 1000 == 0) run_for(milliseconds(100));
  }
  EXPECT_EQ(state(2), JobState::running);
  EXPECT_EQ(scheduler_.running_count(), 2u) << "the push job holds no slot";
  EXPECT_LE(scheduler_.pending_wakes(), 4u) << "no wake-up per point";

  run_for(milliseconds(1800));  // 1.9 s after the last point (the loop ran 0.1 s past it)
  EXPECT_EQ(state(2), JobState::running) << "its own stall_timeout, from the last point";
  run_for(milliseconds(200));
  EXPECT_EQ(state(2), JobState::failed);
  EXPECT_EQ(scheduler_.find(2)->reason, "stalled");
  EXPECT_EQ(state(1), JobState::running);
}

TEST_F(SchedulerTest, AManualStartThatWaitsForASlotIsAnnouncedAndRestored) {
  add(1, spec("first", 1000));
  add(2, spec("second", 1000));  // the two slots taken
  core::JobSpec manual = spec("manual", 10);
  manual.start = core::StartMode::manual;
  add(3, manual);
  ASSERT_TRUE(scheduler_.start(3));
  EXPECT_EQ(state(3), JobState::queued) << "no slot yet";
  EXPECT_EQ(recorder_.start_requests, (std::vector<core::JobId>{3})) << "the store keeps it";

  // After a restart the request is restored with the job: it runs when a slot frees.
  Scheduler restarted({2, seconds(5), 100}, clock_);
  RestoredJob busy;
  busy.id = 1;
  busy.spec = spec("first", 1000);
  busy.state = JobState::running;
  ASSERT_TRUE(restarted.restore_job(busy));
  busy.id = 2;
  busy.spec = spec("second", 1000);
  ASSERT_TRUE(restarted.restore_job(busy));
  RestoredJob waiting;
  waiting.id = 3;
  waiting.spec = manual;
  waiting.start_requested = true;
  ASSERT_TRUE(restarted.restore_job(waiting));
  EXPECT_EQ(restarted.find(3)->state, JobState::queued);
  ASSERT_TRUE(restarted.stop(1));
  EXPECT_EQ(restarted.find(3)->state, JobState::running) << "started by the request from before";
}

}  // namespace
}  // namespace vapor::runtime
