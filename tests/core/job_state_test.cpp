#include "core/job_state.hpp"

#include <gtest/gtest.h>

#include <map>
#include <utility>

namespace vapor::core {
namespace {

using S = JobState;
using E = JobEvent;

// Every (state, event) pair; absent from this table means "forbidden".
const std::map<std::pair<S, E>, S> allowed = {
    {{S::queued, E::start}, S::running},     {{S::queued, E::stop}, S::stopped},
    {{S::running, E::complete}, S::complete}, {{S::running, E::fail}, S::failed},
    {{S::running, E::stop}, S::stopped},
};

TEST(JobStateMachine, EveryStateEventPairMatchesTheTable) {
  int checked = 0;
  for (const S state : all_job_states) {
    for (const E event : all_job_events) {
      const auto expected = allowed.find({state, event});
      const auto actual = next_state(state, event);
      if (expected == allowed.end()) {
        EXPECT_FALSE(actual.has_value())
            << to_string(state) << " + " << to_string(event) << " must be rejected";
      } else {
        ASSERT_TRUE(actual.has_value()) << to_string(state) << " + " << to_string(event);
        EXPECT_EQ(*actual, expected->second) << to_string(state) << " + " << to_string(event);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 20);
}

TEST(JobStateMachine, TerminalStatesAcceptNothing) {
  for (const S state : {S::complete, S::failed, S::stopped}) {
    EXPECT_TRUE(is_terminal(state));
    for (const E event : all_job_events) EXPECT_FALSE(next_state(state, event));
  }
  EXPECT_FALSE(is_terminal(S::queued));
  EXPECT_FALSE(is_terminal(S::running));
}

TEST(JobStateMachine, NamesRoundTrip) {
  for (const S state : all_job_states) EXPECT_EQ(parse_job_state(to_string(state)), state);
  EXPECT_FALSE(parse_job_state("paused"));
  EXPECT_EQ(to_string(S::failed), "failed");
}

}  // namespace
}  // namespace vapor::core
