#include "http/request_target.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "http/static_assets.hpp"

namespace vapor::http {
namespace {

TEST(RequestTargetTest, AnAbsoluteFormTargetSplitsIntoAuthorityAndOriginForm) {
  const auto full = absolute_form("http://127.0.0.1:9786/api/v1/jobs/7?limit=2");
  ASSERT_TRUE(full);
  EXPECT_TRUE(full->valid);
  EXPECT_EQ(full->authority, "127.0.0.1:9786");
  EXPECT_EQ(full->origin_form, "/api/v1/jobs/7?limit=2");
  EXPECT_EQ(parse_target(full->origin_form).resource, Resource::job);

  const auto bare = absolute_form("HTTPS://[::1]:9786?x=1");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->authority, "[::1]:9786");
  EXPECT_EQ(bare->origin_form, "/?x=1");

  EXPECT_FALSE(absolute_form("http://user:secret@localhost/")->valid);
  EXPECT_FALSE(absolute_form("http:///metrics")->valid);
  for (const char* other : {"/metrics", "/api/v1/jobs/http://x", "*", "ftp://host/metrics"}) {
    EXPECT_FALSE(absolute_form(other)) << other;
  }
}

TEST(RequestTargetTest, EachPathNamesOneResource) {
  struct Case {
    std::string target;
    Resource resource;
    std::string job_ref;
    std::string query;
  };
  const Case cases[] = {
      {"/metrics", Resource::metrics, "", ""},
      {"/metrics?x=1", Resource::metrics, "", "x=1"},
      {"/healthz", Resource::healthz, "", ""},
      {"/readyz", Resource::readyz, "", ""},
      {"/ws", Resource::ws, "", ""},
      {"/api/v1/jobs", Resource::jobs, "", ""},
      {"/api/v1/jobs/", Resource::unknown, "", ""},
      {"/api/v1/jobs/7", Resource::job, "7", ""},
      {"/api/v1/jobs/bert-base", Resource::job, "bert-base", ""},
      {"/api/v1/jobs/bert%2Dbase", Resource::job, "bert-base", ""},
      {"/api/v1/jobs/a%zz", Resource::unknown, "", ""},
      {"/api/v1/jobs/7/metrics?after_step=3&limit=2", Resource::points, "7",
       "after_step=3&limit=2"},
      {"/api/v1/jobs/7/events", Resource::events, "7", ""},
      {"/api/v1/jobs/7/start", Resource::start, "7", ""},
      {"/api/v1/jobs/7/stop", Resource::stop, "7", ""},
      {"/api/v1/jobs/7/stop/", Resource::unknown, "", ""},
      {"/api/v1/jobs/7/delete", Resource::unknown, "", ""},
      {"/api/v1/jobs//start", Resource::unknown, "", ""},
      {"/api/v1/jobsx", Resource::unknown, "", ""},
      {"/metrics/", Resource::unknown, "", ""},
      {"/assets/../app.js", Resource::unknown, "", ""},
      {"/nowhere", Resource::unknown, "", ""},
      {"", Resource::unknown, "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    const Target parsed = parse_target(c.target);
    EXPECT_EQ(parsed.resource, c.resource);
    EXPECT_EQ(parsed.job_ref, c.job_ref);
    EXPECT_EQ(parsed.query, c.query);
  }
}

TEST(RequestTargetTest, TheIndexAndOnlyTheListedAssetsAreFiles) {
  const Target index = parse_target("/?reload=1");
  EXPECT_EQ(index.resource, Resource::index);
  ASSERT_NE(index.asset, nullptr);
  EXPECT_EQ(index.asset, find_static_asset("/"));
  const Target script = parse_target("/assets/app.js");
  EXPECT_EQ(script.resource, Resource::asset);
  ASSERT_NE(script.asset, nullptr);
  const Target missing = parse_target("/assets/secret.txt");
  EXPECT_EQ(missing.resource, Resource::unknown);
  EXPECT_EQ(missing.asset, nullptr);
}

TEST(RequestTargetTest, PercentDecodingRefusesMalformedEscapes) {
  EXPECT_EQ(percent_decode("a%20b+c", false), "a b+c");
  EXPECT_EQ(percent_decode("a%20b+c", true), "a b c");
  EXPECT_EQ(percent_decode("%41%6a", false), "Aj");
  EXPECT_EQ(percent_decode("%4", false), std::nullopt);
  EXPECT_EQ(percent_decode("%", false), std::nullopt);
  EXPECT_EQ(percent_decode("%g1", false), std::nullopt);
}

TEST(RequestTargetTest, UnsignedIntegersAreDecimalAndFit) {
  EXPECT_EQ(parse_unsigned("0"), 0u);
  EXPECT_EQ(parse_unsigned("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(parse_unsigned("18446744073709551616"), std::nullopt);
  EXPECT_EQ(parse_unsigned("-1"), std::nullopt);
  EXPECT_EQ(parse_unsigned("+1"), std::nullopt);
  EXPECT_EQ(parse_unsigned("1 "), std::nullopt);
  EXPECT_EQ(parse_unsigned(""), std::nullopt);
  EXPECT_EQ(parse_unsigned("000000000000000000001"), std::nullopt) << "more than 20 digits";
}

TEST(RequestTargetTest, QueryParametersReportTheFirstProblemByName) {
  QueryReader query("limit=5&after_step=%31%30&limit=7&empty=&max_points=1");
  EXPECT_EQ(query.integer("limit", 1, 10), 7u) << "the last of a repeated parameter";
  EXPECT_EQ(query.integer("after_step", 0, std::numeric_limits<std::uint64_t>::max()), 10u);
  EXPECT_EQ(query.integer("absent", 0, 10), std::nullopt);
  EXPECT_FALSE(query.problem());
  EXPECT_EQ(query.text("empty"), "");

  EXPECT_EQ(query.integer("max_points", 2, 10000), std::nullopt);
  ASSERT_TRUE(query.problem());
  EXPECT_EQ(*query.problem(), "max_points: expected an integer from 2 to 10000, got \"1\"");
  EXPECT_EQ(query.integer("limit", 1, 10), std::nullopt) << "nothing after the first problem";
  EXPECT_EQ(*query.problem(), "max_points: expected an integer from 2 to 10000, got \"1\"");

  QueryReader unbounded("after_step=x");
  EXPECT_EQ(unbounded.integer("after_step", 0, std::numeric_limits<std::uint64_t>::max()),
            std::nullopt);
  EXPECT_EQ(*unbounded.problem(), "after_step: expected an integer >= 0, got \"x\"");

  QueryReader malformed("limit=%zz");
  EXPECT_EQ(malformed.text("limit"), std::nullopt);
  EXPECT_EQ(*malformed.problem(), "limit: malformed percent-encoding");
}

}  // namespace
}  // namespace vapor::http
