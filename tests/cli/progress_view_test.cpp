#include "cli/progress_view.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace vapor::cli {
namespace {

boost::json::object parse(std::string_view text) { return boost::json::parse(text).as_object(); }

ProgressView two_jobs() {
  ProgressView view;
  view.add_job(parse(R"({"id":1,"name":"resnet","state":"running","step":0,"steps":100,
                         "epoch":0,"epochs":4,"loss":null,"eta_seconds":null})"));
  view.add_job(parse(R"({"id":2,"name":"bert","state":"queued","step":0,"steps":10,
                         "epoch":0,"epochs":1,"loss":null,"eta_seconds":null})"));
  return view;
}

TEST(ProgressView, PointsMoveTheBarAndTheSparkline) {
  auto view = two_jobs();
  for (int step = 1; step <= 50; ++step) {
    ASSERT_TRUE(view.apply(parse(R"({"type":"point","job_id":1,"step":)" + std::to_string(step) +
                                 R"(,"epoch":2,"loss":)" + std::to_string(3.0 - step * 0.05) +
                                 R"(,"eta_seconds":125})")));
  }
  const auto lines = view.render_bars(80);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("resnet"), std::string::npos);
  EXPECT_NE(lines[0].find(" 50%"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("ep 2/4 step 50/100"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("eta 2m05s"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("█▇"), std::string::npos) << "a falling loss draws a falling sparkline";
  EXPECT_EQ(view.jobs().at(1).recent_losses.size(), ProgressView::sparkline_width);
  EXPECT_FALSE(view.apply(parse(R"({"type":"point","job_id":9,"step":1})"))) << "not watched";
}

TEST(ProgressView, NonFiniteLossIsShownNotDropped) {
  auto view = two_jobs();
  view.apply(parse(R"({"type":"point","job_id":1,"step":1,"epoch":1,"loss":2.0})"));
  view.apply(parse(R"({"type":"point","job_id":1,"step":2,"epoch":1,"loss":null,
                       "loss_nonfinite":"nan"})"));
  const auto line = view.render_bars(80)[0];
  EXPECT_NE(line.find("loss NaN"), std::string::npos) << line;
  EXPECT_NE(line.find('!'), std::string::npos) << "NaN marked in the sparkline: " << line;
}

TEST(ProgressView, FinishesWhenEveryJobIsTerminalAndReportsFailures) {
  auto view = two_jobs();
  EXPECT_FALSE(view.all_finished());
  view.apply(parse(R"({"type":"state","job_id":1,"from":"running","to":"complete"})"));
  EXPECT_FALSE(view.all_finished());
  view.apply(parse(R"({"type":"state","job_id":2,"from":"running","to":"failed",
                       "reason":"crashed"})"));
  EXPECT_TRUE(view.all_finished());
  EXPECT_TRUE(view.any_failed());
  EXPECT_EQ(view.summary(), "2 jobs: 1 complete, 1 failed\n  failed bert: crashed");
  EXPECT_NE(view.render_bars(80)[1].find("(crashed)"), std::string::npos);
}

TEST(ProgressView, PlainLinesForStatesAndEachTenthOfProgress) {
  auto view = two_jobs();
  int lines = 0;
  for (int step = 1; step <= 100; ++step) {
    const auto message = parse(R"({"type":"point","job_id":1,"epoch":1,"loss":1.0,"step":)" +
                               std::to_string(step) + "}");
    view.apply(message);
    if (!view.plain_line(message).empty()) ++lines;
  }
  EXPECT_EQ(lines, 11) << "the first step, then every 10%";
  const auto state = parse(R"({"type":"state","job_id":1,"from":"running","to":"complete"})");
  view.apply(state);
  EXPECT_EQ(view.plain_line(state), "resnet: running -> complete");
}

TEST(ProgressView, EtaFormats) {
  EXPECT_EQ(format_eta(std::nullopt), "?");
  EXPECT_EQ(format_eta(42.4), "42s");
  EXPECT_EQ(format_eta(185), "3m05s");
  EXPECT_EQ(format_eta(3720), "1h02m");
}

}  // namespace
}  // namespace vapor::cli
