#include "core/eta_estimator.hpp"

#include <gtest/gtest.h>

namespace vapor::core {
namespace {

using std::chrono::milliseconds;

TEST(EtaEstimator, UnknownUntilAFewIntervalsHaveBeenSeen) {
  EtaEstimator eta;
  EXPECT_FALSE(eta.eta_seconds(100));
  for (int i = 0; i < EtaEstimator::min_intervals; ++i) {
    eta.observe(milliseconds(i * 100));
    EXPECT_FALSE(eta.eta_seconds(100)) << "after " << i + 1 << " steps";
  }
  eta.observe(milliseconds(EtaEstimator::min_intervals * 100));
  ASSERT_TRUE(eta.eta_seconds(100));
  EXPECT_NEAR(*eta.eta_seconds(100), 10.0, 1e-9);
}

TEST(EtaEstimator, FollowsASlowdownWithinAFewSteps) {
  EtaEstimator eta;
  auto t = milliseconds(0);
  for (int i = 0; i < 20; ++i) eta.observe(t += milliseconds(100));
  EXPECT_NEAR(*eta.seconds_per_step(), 0.1, 1e-9);
  for (int i = 0; i < 15; ++i) eta.observe(t += milliseconds(400));
  EXPECT_GT(*eta.seconds_per_step(), 0.38);
  EXPECT_LT(*eta.seconds_per_step(), 0.4 + 1e-9);
}

TEST(EtaEstimator, OneSlowStepDoesNotSwingTheEstimate) {
  EtaEstimator eta;
  auto t = milliseconds(0);
  for (int i = 0; i < 20; ++i) eta.observe(t += milliseconds(100));
  eta.observe(t += milliseconds(1000));
  EXPECT_LT(*eta.seconds_per_step(), 0.3);
}

TEST(EtaEstimator, ResetForgetsThePace) {
  EtaEstimator eta;
  for (int i = 0; i < 10; ++i) eta.observe(milliseconds(i * 10));
  eta.reset();
  EXPECT_FALSE(eta.eta_seconds(5));
}

}  // namespace
}  // namespace vapor::core
