#include "core/simulator.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

namespace vapor::core {
namespace {

JobSpec make_spec(std::uint64_t epochs = 10, std::uint64_t steps_per_epoch = 100) {
  JobSpec spec;
  spec.name = "resnet-test";
  spec.epochs = epochs;
  spec.steps_per_epoch = steps_per_epoch;
  spec.seed = seed_from_name(spec.name);
  return spec;
}

std::vector<SimulatedStep> run(const JobSpec& spec, std::uint64_t first, std::uint64_t last) {
  std::vector<SimulatedStep> steps;
  for (auto step = first; step <= last; ++step) steps.push_back(simulate_step(spec, step));
  return steps;
}

double mean_loss(const std::vector<SimulatedStep>& steps, std::size_t begin, std::size_t end) {
  double sum = 0.0;
  for (auto i = begin; i < end; ++i) sum += steps[i].loss;
  return sum / static_cast<double>(end - begin);
}

TEST(Simulator, SameSpecGivesBitIdenticalCurvesAcrossRuns) {
  const auto spec = make_spec();
  const auto first = run(spec, 1, spec.total_steps());
  const auto second = run(spec, 1, spec.total_steps());
  ASSERT_EQ(first.size(), second.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].loss, second[i].loss) << "step " << first[i].step;
    EXPECT_EQ(first[i].accuracy, second[i].accuracy) << "step " << first[i].step;
  }
}

TEST(Simulator, ResumingAtAnyStepReproducesTheUninterruptedRun) {
  const auto spec = make_spec();
  const auto reference = run(spec, 1, spec.total_steps());
  for (const std::uint64_t resume_at : {2ULL, 137ULL, 500ULL, 999ULL}) {
    const auto resumed = run(spec, resume_at, spec.total_steps());
    for (std::size_t i = 0; i < resumed.size(); ++i) {
      const auto& expected = reference[resume_at - 1 + i];
      EXPECT_EQ(resumed[i].step, expected.step);
      EXPECT_EQ(resumed[i].loss, expected.loss) << "resume at " << resume_at;
      EXPECT_EQ(resumed[i].accuracy, expected.accuracy) << "resume at " << resume_at;
    }
  }
}

TEST(Simulator, DifferentSeedsGiveDifferentNoise) {
  auto a = make_spec();
  auto b = make_spec();
  b.seed = a.seed + 1;
  int differing = 0;
  for (std::uint64_t step = 1; step <= 100; ++step) {
    if (simulate_step(a, step).loss != simulate_step(b, step).loss) ++differing;
  }
  EXPECT_GT(differing, 95);
}

TEST(Simulator, LossTrendsDownAtDefaultSettings) {
  const auto spec = make_spec();
  const auto steps = run(spec, 1, spec.total_steps());
  const auto tenth = steps.size() / 10;
  const double first = mean_loss(steps, 0, tenth);
  const double last = mean_loss(steps, steps.size() - tenth, steps.size());
  EXPECT_LT(last, first * 0.25) << "first tenth " << first << ", last tenth " << last;
  EXPECT_GT(last, spec.simulate.final_loss * 0.5) << "loss must stay near its floor, not vanish";
  EXPECT_GT(steps.back().accuracy, steps.front().accuracy + 0.5);
}

TEST(Simulator, NoiseIsMultiplicativeAndBounded) {
  auto spec = make_spec();
  spec.simulate.noise = 0.1;
  double max_deviation = 0.0;
  double sum_log_ratio = 0.0;
  for (std::uint64_t step = 1; step <= spec.total_steps(); ++step) {
    const auto point = simulate_step(spec, step);
    const double log_ratio = std::log(point.loss / expected_loss(spec, step));
    max_deviation = std::max(max_deviation, std::abs(log_ratio));
    sum_log_ratio += log_ratio;
    ASSERT_GE(point.accuracy, 0.0);
    ASSERT_LE(point.accuracy, 1.0);
  }
  EXPECT_LE(max_deviation, spec.simulate.noise * max_noise_sigmas + 1e-12);
  EXPECT_GT(max_deviation, spec.simulate.noise) << "noise should actually be present";
  EXPECT_NEAR(sum_log_ratio / static_cast<double>(spec.total_steps()), 0.0, 0.02);
}

TEST(Simulator, ZeroNoiseFollowsTheExpectedCurveExactly) {
  auto spec = make_spec();
  spec.simulate.noise = 0.0;
  for (std::uint64_t step = 1; step <= spec.total_steps(); step += 97) {
    EXPECT_DOUBLE_EQ(simulate_step(spec, step).loss, expected_loss(spec, step));
  }
}

TEST(Simulator, HigherLearningRateDecaysFaster) {
  auto slow = make_spec();
  auto fast = make_spec();
  slow.simulate.noise = fast.simulate.noise = 0.0;
  slow.learning_rate = 1e-4;
  fast.learning_rate = 1e-2;
  for (const std::uint64_t step : {50ULL, 200ULL, 500ULL}) {
    EXPECT_LT(simulate_step(fast, step).loss, simulate_step(slow, step).loss) << "step " << step;
  }
}

TEST(Simulator, EpochsAdvanceEveryStepsPerEpoch) {
  const auto spec = make_spec(3, 50);
  EXPECT_EQ(simulate_step(spec, 1).epoch, 1u);
  EXPECT_EQ(simulate_step(spec, 50).epoch, 1u);
  EXPECT_EQ(simulate_step(spec, 51).epoch, 2u);
  EXPECT_EQ(simulate_step(spec, 150).epoch, 3u);
}

struct FaultCase {
  const char* name;
  Faults faults;
  std::uint64_t step;
  StepKind kind;
  bool nan_loss;
};

class SimulatorFaults : public ::testing::TestWithParam<FaultCase> {};

TEST_P(SimulatorFaults, FiresExactlyAtItsStep) {
  const auto& fault = GetParam();
  auto spec = make_spec();
  spec.faults = fault.faults;
  const auto before = simulate_step(spec, fault.step - 1);
  EXPECT_EQ(before.kind, StepKind::point);
  EXPECT_TRUE(std::isfinite(before.loss));
  const auto at = simulate_step(spec, fault.step);
  EXPECT_EQ(at.kind, fault.kind);
  EXPECT_EQ(std::isnan(at.loss), fault.nan_loss);
}

Faults crash_at(std::uint64_t step) {
  Faults faults;
  faults.fail_at_step = step;
  return faults;
}
Faults nan_at(std::uint64_t step) {
  Faults faults;
  faults.nan_at_step = step;
  return faults;
}
Faults stall_at(std::uint64_t step) {
  Faults faults;
  faults.stall_at_step = step;
  return faults;
}

INSTANTIATE_TEST_SUITE_P(
    Faults, SimulatorFaults,
    ::testing::Values(FaultCase{"crash", crash_at(120), 120, StepKind::crash, false},
                      FaultCase{"nan", nan_at(77), 77, StepKind::point, true},
                      FaultCase{"stall", stall_at(300), 300, StepKind::stall, false}),
    [](const ::testing::TestParamInfo<FaultCase>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(Simulator, StallHoldsForEveryLaterStep) {
  auto spec = make_spec();
  spec.faults.stall_at_step = 10;
  EXPECT_EQ(simulate_step(spec, 11).kind, StepKind::stall);
  EXPECT_EQ(simulate_step(spec, 999).kind, StepKind::stall);
}

TEST(Simulator, FailProbabilityCrashesAtADeterministicStep) {
  auto spec = make_spec();
  spec.faults.fail_probability = 0.01;
  std::uint64_t first_crash = 0;
  int crashes = 0;
  for (std::uint64_t step = 1; step <= spec.total_steps(); ++step) {
    if (simulate_step(spec, step).kind == StepKind::crash) {
      if (first_crash == 0) first_crash = step;
      ++crashes;
    }
  }
  ASSERT_NE(first_crash, 0u) << "1% over 1000 steps should crash";
  EXPECT_GT(crashes, 2);
  EXPECT_LT(crashes, 30);
  EXPECT_EQ(simulate_step(spec, first_crash).kind, StepKind::crash) << "same answer when asked again";
}

TEST(Simulator, SlowdownStretchesTheStepIntervalFromItsStep) {
  auto spec = make_spec();
  spec.step_interval = std::chrono::milliseconds(100);
  spec.faults.slowdown = Slowdown{200, 3.0};
  EXPECT_EQ(step_delay(spec, 199), std::chrono::milliseconds(100));
  EXPECT_EQ(step_delay(spec, 200), std::chrono::milliseconds(300));
  EXPECT_EQ(step_delay(spec, 900), std::chrono::milliseconds(300));
}

}  // namespace
}  // namespace vapor::core
