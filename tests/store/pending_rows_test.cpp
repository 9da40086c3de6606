// The rows a store holds until its next commit: grouped by job, merged across hand-overs in the
// order they were recorded, so that a read sees a re-recorded step's latest point.

#include "store/detail/pending_rows.hpp"
#include "support/job_specs.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <vector>

namespace vapor::store::detail {
namespace {

core::StepRecorded point(core::JobId job, std::uint64_t step, double loss) {
  return testing::step_recorded(job, step, loss);
}

std::vector<std::uint64_t> steps(const std::vector<StoredPoint>& points) {
  std::vector<std::uint64_t> out;
  for (const auto& p : points) out.push_back(p.step);
  return out;
}

constexpr auto all = std::numeric_limits<std::uint64_t>::max();

TEST(PendingRows, AReadTouchesOnlyItsJobAndSortsOutOfOrderSteps) {
  PendingRows rows;
  for (std::uint64_t step : {3u, 1u, 2u}) rows.add_point(point(7, step, 1.0));
  rows.add_point(point(8, 1, 5.0));
  EXPECT_EQ(steps(rows.points_of(7, 0, all)), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(steps(rows.points_of(7, 1, 2)), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(steps(rows.points_of(8, 0, all)), (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(rows.points_of(9, 0, all).empty());
  EXPECT_EQ(rows.row_count(), 4u);
}

TEST(PendingRows, AppendKeepsRecordingOrderSoTheLaterRecordingOfAStepWins) {
  PendingRows held;
  held.add_point(point(1, 1, 1.0));
  held.add_point(point(1, 2, 2.0));
  held.add_transition({1, core::JobState::queued, core::JobState::running, "", {}, 0});
  PendingRows later;
  later.add_point(point(1, 2, 20.0));  // step 2 again (a re-run after a restart)
  later.add_point(point(2, 1, 3.0));
  later.add_transition({1, core::JobState::running, core::JobState::failed, "crashed", {}, 2});
  held.append(std::move(later));

  const auto points = held.points_of(1, 0, all);
  ASSERT_EQ(steps(points), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(points[1].loss, 20.0);
  EXPECT_EQ(held.points_of(2, 0, all).size(), 1u);
  const auto transitions = held.transitions_of(1);
  ASSERT_EQ(transitions.size(), 2u);
  EXPECT_EQ(transitions[1].reason, "crashed");
  EXPECT_EQ(held.row_count(), 6u);

  PendingRows empty;
  empty.append(std::move(held));  // taken over whole
  EXPECT_EQ(empty.row_count(), 6u);
  empty.clear();
  EXPECT_EQ(empty.row_count(), 0u);
  EXPECT_TRUE(empty.points_of(1, 0, all).empty());
}

TEST(PendingRows, BucketExtremesKeepNaNAsTheMaximumAndNeverAsTheMinimum) {
  std::vector<StoredPoint> points;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::uint64_t step = 1; step <= 4; ++step) {
    points.push_back({1, step, 1, step == 3 ? nan : static_cast<double>(step), 0.5, {}, {}});
  }
  const auto kept = extremes_per_bucket(points, 0, 4);  // one bucket of four steps
  ASSERT_EQ(steps(kept), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_TRUE(std::isnan(kept[1].loss));
}

}  // namespace
}  // namespace vapor::store::detail
