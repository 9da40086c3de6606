#include "core/job_spec.hpp"

#include <gtest/gtest.h>

namespace vapor::core {
namespace {

TEST(JobSpec, NamesFollowTheAllowedAlphabetAndLength) {
  EXPECT_TRUE(is_valid_job_name("resnet50-lr3e-4_v2.1"));
  EXPECT_TRUE(is_valid_job_name(std::string(64, 'a')));
  EXPECT_FALSE(is_valid_job_name(std::string(65, 'a')));
  EXPECT_FALSE(is_valid_job_name(""));
  EXPECT_FALSE(is_valid_job_name("has space"));
  EXPECT_FALSE(is_valid_job_name("slash/name"));
  EXPECT_FALSE(is_valid_job_name("caf\xc3\xa9"));
}

TEST(JobSpec, SeedFromNameIsStableAndDistinct) {
  EXPECT_EQ(seed_from_name("bert"), seed_from_name("bert"));
  EXPECT_NE(seed_from_name("bert"), seed_from_name("bert2"));
  EXPECT_EQ(seed_from_name(""), 0xcbf29ce484222325ULL);  // FNV-1a offset basis
}

TEST(JobSpec, TotalStepsIsEpochsTimesStepsPerEpoch) {
  JobSpec spec;
  spec.epochs = 7;
  spec.steps_per_epoch = 30;
  EXPECT_EQ(spec.total_steps(), 210u);
}

}  // namespace
}  // namespace vapor::core
