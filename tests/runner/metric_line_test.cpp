// The line a real trainer writes for each point: what it may say, and the error it gets when it
// says something else (written to the job's log with the line number, never fatal).

#include "runner/metric_line.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <string>

namespace vapor::runner {
namespace {

using std::chrono::milliseconds;

ReportedPoint parsed(std::string_view line) {
  auto point = parse_metric_line(line);
  EXPECT_TRUE(point) << line << ": " << (point ? "" : point.error().message);
  return point ? *point : ReportedPoint{};
}

std::string refusal(std::string_view line) {
  auto point = parse_metric_line(line);
  EXPECT_FALSE(point) << line;
  return point ? "" : point.error().message;
}

TEST(MetricLine, StepAndLossAreEnough) {
  const auto point = parsed(R"({"step": 12, "loss": 0.731})");
  EXPECT_EQ(point.step, 12u);
  EXPECT_DOUBLE_EQ(point.loss, 0.731);
  EXPECT_FALSE(point.epoch || point.accuracy || point.progress || point.ts);
  EXPECT_TRUE(point.scalars.empty());
}

TEST(MetricLine, EveryOptionalKeyAndNamedScalarsInOrder) {
  const auto point = parsed(
      R"({"step":3,"epoch":1,"loss":1.5,"accuracy":0.25,"progress":0.03,)"
      R"("ts":"2026-12-06T18:40:00.250Z","val_loss":1.75,"lr":0.001,"grad_norm":3})");
  EXPECT_EQ(point.epoch, 1u);
  EXPECT_EQ(point.accuracy, 0.25);
  EXPECT_EQ(point.progress, 0.03);
  ASSERT_TRUE(point.ts);
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(point.ts->time_since_epoch()).count(),
            1796582400250);
  ASSERT_EQ(point.scalars.size(), 3u);
  EXPECT_EQ(point.scalars[0].name, "val_loss");
  EXPECT_EQ(point.scalars[1].name, "lr");
  EXPECT_EQ(point.scalars[2], (core::NamedScalar{"grad_norm", 3.0}));
}

TEST(MetricLine, NonFiniteLossesHaveTheirJsonSpellings) {
  EXPECT_TRUE(std::isnan(parsed(R"({"step":1,"loss":null})").loss));
  EXPECT_TRUE(std::isnan(parsed(R"({"step":1,"loss":"NaN"})").loss));
  EXPECT_EQ(parsed(R"({"step":1,"loss":"Infinity"})").loss, INFINITY);
  EXPECT_EQ(parsed(R"({"step":1,"loss":"-Infinity"})").loss, -INFINITY);
  EXPECT_TRUE(std::isnan(parsed(R"({"step":1,"loss":1,"val_loss":"NaN"})").scalars[0].value));
}

TEST(MetricLine, IntegersWrittenAsFloatsAreIntegers) {
  EXPECT_EQ(parsed(R"({"step":40.0,"loss":1})").step, 40u);
  EXPECT_EQ(parsed(R"({"step":1e3,"loss":1})").step, 1000u);
}

TEST(MetricLine, TimesWithOffsetsAreUtc) {
  const auto utc = parse_rfc3339("2026-12-06T18:40:00Z");
  const auto plus_one = parse_rfc3339("2026-12-06T19:40:00+01:00");
  const auto minus = parse_rfc3339("2026-12-06T13:10:00-05:30");
  ASSERT_TRUE(utc && plus_one && minus);
  EXPECT_EQ(*utc, *plus_one);
  EXPECT_EQ(*utc, *minus);
  for (const char* bad : {"2026-12-06", "2026-12-06T18:40:00", "2026-13-01T00:00:00Z",
                          "2026-02-30T00:00:00Z", "2026-12-06T24:00:00Z", "2026-12-06T18:40:00.Z",
                          "2026-12-06T18:40:00Z trailing", "yesterday",
                          // found by the fuzzer: past what the clock holds in nanoseconds
                          "6029-12-06T13:10:00-05:30", "1969-12-31T23:59:59Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(MetricLine, RefusalsNameTheKeyAndWhatWasExpected) {
  EXPECT_EQ(refusal(R"({"loss":1})"), "\"step\" is missing (an integer >= 1)");
  EXPECT_EQ(refusal(R"({"step":1})"),
            "\"loss\" is missing (a number, null, \"NaN\" or \"Infinity\")");
  EXPECT_EQ(refusal(R"({"step":-3,"loss":1})"),
            "\"step\": expected an integer from 1 to 2^53 - 1, got -3");
  EXPECT_EQ(refusal(R"({"step":0,"loss":1})"),
            "\"step\": expected an integer from 1 to 2^53 - 1, got 0");
  EXPECT_EQ(refusal(R"({"step":1.5,"loss":1})"),
            "\"step\": expected an integer from 1 to 2^53 - 1, got 1.5E0");
  EXPECT_EQ(refusal(R"({"step":9007199254740992,"loss":1})"),
            "\"step\": expected an integer from 1 to 2^53 - 1, got 9007199254740992")
      << "past what the page and JSON readers hold exactly";
  EXPECT_EQ(parsed(R"({"step":9007199254740991,"loss":1})").step, 9007199254740991u);
  EXPECT_EQ(refusal(R"({"step":1,"loss":"low"})"),
            "\"loss\": expected a number, null, \"NaN\" or \"Infinity\", got \"low\"");
  EXPECT_EQ(refusal(R"({"step":1,"loss":1,"progress":1.5})"),
            "\"progress\": expected a number from 0 to 1, got 1.5E0");
  EXPECT_EQ(refusal(R"({"step":1,"loss":1,"ts":"now"})"),
            "\"ts\": expected an RFC 3339 time such as \"2026-12-06T18:40:00Z\", got \"now\"");
  EXPECT_EQ(refusal(R"({"step":1,"loss":1,"Val-Loss":2})"),
            "\"Val-Loss\": a named scalar's name is [a-z][a-z0-9_]{0,63}");
  EXPECT_EQ(refusal(R"({"step":1,"loss":1,"phase":"train"})"),
            "\"phase\": expected a number (a named scalar), got \"train\"");
  EXPECT_EQ(refusal("[1,2]"), "expected a JSON object, got [1,2]");
  EXPECT_TRUE(refusal(R"({"step":1,"loss":)").starts_with("not valid JSON ("));
}

TEST(MetricLine, AtMostThirtyTwoNamedScalars) {
  std::string line = R"({"step":1,"loss":1)";
  for (int i = 0; i < 32; ++i) line += ",\"s" + std::to_string(i) + "\":" + std::to_string(i);
  EXPECT_EQ(parsed(line + "}").scalars.size(), 32u);
  EXPECT_EQ(refusal(line + ",\"one_more\":1}"), "more than 32 named scalars in one point");
}

TEST(MetricLine, ScalarNames) {
  EXPECT_TRUE(valid_scalar_name("val_loss"));
  EXPECT_TRUE(valid_scalar_name("a"));
  EXPECT_TRUE(valid_scalar_name(std::string(64, 'x')));
  EXPECT_FALSE(valid_scalar_name(std::string(65, 'x')));
  EXPECT_FALSE(valid_scalar_name("1st"));
  EXPECT_FALSE(valid_scalar_name("_private"));
  EXPECT_FALSE(valid_scalar_name(""));
}

}  // namespace
}  // namespace vapor::runner
