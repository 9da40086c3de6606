#include "http/router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "app/job_service.hpp"
#include "config/queue_file.hpp"
#include "core/job_spec.hpp"
#include "http/access.hpp"
#include "http/json_codec.hpp"
#include "http/static_assets.hpp"
#include "metrics/vapor_metrics.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include <boost/asio/io_context.hpp>

#include "store/sqlite_job_store.hpp"
#include "store/store_thread.hpp"

namespace vapor::http {
namespace {

using boost::beast::http::field;
using boost::beast::http::verb;
using core::JobState;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view token = "s3cret-token-0123456789";

std::unique_ptr<store::SqliteJobStore> open_memory_store() {
  store::StoreOptions options;
  options.path = ":memory:";
  auto opened = store::SqliteJobStore::open(options);
  if (!opened) throw std::runtime_error(opened.error().message);
  return std::move(*opened);
}

core::JobSpec make_spec(std::string name, std::uint64_t steps = 20,
                        core::StartMode start = core::StartMode::automatic) {
  core::JobSpec spec;
  spec.name = std::move(name);
  spec.model = "resnet50";
  spec.epochs = 2;
  spec.steps_per_epoch = steps / 2;
  spec.step_interval = milliseconds(100);
  spec.seed = core::seed_from_name(spec.name);
  spec.start = start;
  return spec;
}

/// A parsed answer: status, headers and the body as JSON (every API body must parse).
struct Answer {
  Response response;
  std::string_view handler;
  boost::json::value json;
  std::shared_ptr<const std::string> shared_body;

  /// The body as the wire carries it: the response's own, then the shared part.
  [[nodiscard]] std::string full_body() const {
    return response.body() + (shared_body ? *shared_body : std::string{});
  }

  [[nodiscard]] unsigned status() const { return response.result_int(); }
  [[nodiscard]] std::string header(field name) const {
    const auto value = response[name];
    return std::string(value.data(), value.size());
  }
  [[nodiscard]] std::string header(std::string_view name) const {
    const auto value = response[boost::beast::string_view(name.data(), name.size())];
    return std::string(value.data(), value.size());
  }
  [[nodiscard]] const boost::json::object& object() const { return json.as_object(); }
  [[nodiscard]] std::string error_code() const {
    return std::string(json.at("error").at("code").as_string());
  }
  [[nodiscard]] std::string error_message() const {
    return std::string(json.at("error").at("message").as_string());
  }
};

class RouterTest : public ::testing::Test {
 protected:
  RouterTest()
      : scheduler_({2, seconds(60), max_jobs}, clock_),
        jobs_({config::SpecDefaults{milliseconds(250)}, max_jobs, "jobs.yaml", 1 << 20, ":memory:"},
              scheduler_, [this](const store::NewJob& job) { store_.add_job(job); }, metrics_,
              clock_, [] {}),
        context_{scheduler_,
                 store_,
                 jobs_,
                 access_,
                 config::SpecDefaults{milliseconds(250)},
                 [this] { return MetricsText{metrics_head_, metrics_jobs_}; },
                 [this] { return ready_; }} {
    scheduler_.add_listener(store_);
    access_.api_token = std::string(token);
    access_.listen_host = "127.0.0.1";
    access_.listen_port = 9786;
    access_.allowed_hosts = {"vapor.example.com", "proxy.example.com:8443"};
    access_.allowed_origins = {"https://grafana.example.com"};
  }

  /// Adds a job as the API would, through the daemon's JobService.
  core::JobId add_job(core::JobSpec spec) {
    core::JobId id = 0;
    const auto refused = jobs_.submit(std::move(spec), id);
    EXPECT_FALSE(refused) << refused->message;
    return id;
  }

  /// Moves the fake clock in small increments, running the scheduler as its driver would.
  void run_for(milliseconds total, milliseconds tick = milliseconds(10)) {
    for (milliseconds elapsed{0}; elapsed < total; elapsed += tick) {
      clock_.advance(tick);
      scheduler_.advance();
    }
  }

  static Request request(verb method, std::string target) {
    Request out{method, target, 11};
    out.set(field::host, "127.0.0.1:9786");
    return out;
  }

  static Request post(std::string target, std::string body = {},
                      std::optional<std::string> authorization = "Bearer " + std::string(token)) {
    Request out = request(verb::post, std::move(target));
    if (authorization) out.set(field::authorization, *authorization);
    if (!body.empty()) out.set(field::content_type, "application/json");
    out.body() = std::move(body);
    out.prepare_payload();
    return out;
  }

  /// Routes a request; the body must be JSON unless `json` is false.
  Answer send(const Request& req, bool json = true) {
    // The store thread is not started: reads run at once, and their answers come through the
    // loop, as in the daemon.
    std::optional<Routed> answered;
    route(req, context_, [&](Routed routed) {
      EXPECT_FALSE(answered) << "answered twice";
      answered = std::move(routed);
    });
    ioc_.restart();
    ioc_.poll();
    EXPECT_TRUE(answered) << "no answer for " << req.target();
    if (!answered) return Answer{};
    Routed routed = std::move(*answered);
    Answer answer{std::move(routed.response), routed.handler, nullptr,
                  std::move(routed.shared_body)};
    EXPECT_EQ(answer.response.version(), req.version());
    EXPECT_EQ(answer.response.keep_alive(), req.keep_alive());
    if (json) {
      boost::system::error_code parse_error;
      answer.json = boost::json::parse(answer.response.body(), parse_error);
      EXPECT_FALSE(parse_error) << "not JSON: " << answer.response.body();
      EXPECT_EQ(answer.header(field::content_type), "application/json");
      EXPECT_EQ(answer.header(field::cache_control), "no-store");
    }
    return answer;
  }
  Answer get(std::string target) { return send(request(verb::get, std::move(target))); }

  /// Checks the error shape: {"error":{"code","message"[,"details"]}} and nothing else.
  static void expect_error(const Answer& answer, unsigned status, std::string_view code) {
    EXPECT_EQ(answer.status(), status) << answer.response.body();
    ASSERT_TRUE(answer.json.is_object()) << answer.response.body();
    ASSERT_EQ(answer.object().size(), 1u) << answer.response.body();
    const auto& error = answer.json.at("error").as_object();
    EXPECT_EQ(error.at("code").as_string(), code) << answer.response.body();
    EXPECT_FALSE(error.at("message").as_string().empty());
    for (const auto& entry : error) {
      EXPECT_TRUE(entry.key() == "code" || entry.key() == "message" || entry.key() == "details")
          << entry.key();
    }
  }

  /// Commits what the store holds, through the store thread's interface.
  bool flush() {
    std::optional<bool> committed;
    store_.commit([&](store::CommitOutcome outcome) {
      committed = static_cast<bool>(outcome.result);
    });
    ioc_.restart();
    ioc_.poll();
    return committed.value_or(false);
  }

  boost::asio::io_context ioc_;
  runtime::ManualClock clock_;
  store::StoreThread store_{ioc_.get_executor(), open_memory_store(), 1'000'000};
  static constexpr std::size_t max_jobs = 100;
  runtime::Scheduler scheduler_;
  metrics::VaporMetrics metrics_{{"test", "test"}, std::chrono::minutes(5)};
  app::JobService jobs_;
  AccessPolicy access_;
  std::string metrics_head_ = "# HELP vapor_up test\nvapor_up 1\n";
  std::shared_ptr<const std::string> metrics_jobs_ =
      std::make_shared<const std::string>("vapor_job_step{job_id=\"1\"} 7\n");
  bool ready_ = true;
  RouterContext context_;
};

std::vector<std::uint64_t> steps_of(const boost::json::value& body) {
  std::vector<std::uint64_t> steps;
  for (const auto& point : body.at("points").as_array()) {
    steps.push_back(point.at("step").to_number<std::uint64_t>());
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Plain endpoints

TEST_F(RouterTest, HealthAndReadiness) {
  const Answer health = get("/healthz");
  EXPECT_EQ(health.status(), 200u);
  EXPECT_EQ(health.json, boost::json::parse(R"({"status":"ok"})"));
  EXPECT_EQ(health.handler, "healthz");

  const Answer ready = get("/readyz");
  EXPECT_EQ(ready.status(), 200u);
  EXPECT_EQ(ready.json, boost::json::parse(R"({"status":"ready"})"));
  EXPECT_EQ(ready.handler, "readyz");

  ready_ = false;
  const Answer not_ready = get("/readyz");
  EXPECT_EQ(not_ready.status(), 503u);
  EXPECT_EQ(not_ready.json, boost::json::parse(R"({"status":"not_ready"})"));
  // Liveness does not depend on readiness.
  EXPECT_EQ(get("/healthz").status(), 200u);
}

TEST_F(RouterTest, MetricsAreServedAsPrometheusText) {
  const Answer answer = send(request(verb::get, "/metrics"), false);
  EXPECT_EQ(answer.status(), 200u);
  EXPECT_EQ(answer.handler, "metrics");
  EXPECT_EQ(answer.header(field::content_type), "text/plain; version=0.0.4; charset=utf-8");
  const std::string text = metrics_head_ + *metrics_jobs_;
  EXPECT_EQ(answer.full_body(), text);
  EXPECT_EQ(answer.header(field::content_length), std::to_string(text.size()));
  EXPECT_EQ(answer.shared_body, metrics_jobs_) << "the per-job text is shared, not copied";
}

// ---------------------------------------------------------------------------------------------
// The live page and its assets

TEST_F(RouterTest, LivePageLoadsItsFilesAndRunsNoInlineScript) {
  const Answer answer = send(request(verb::get, "/"), false);
  EXPECT_EQ(answer.status(), 200u);
  EXPECT_EQ(answer.handler, "index");
  EXPECT_EQ(answer.header(field::content_type), "text/html; charset=utf-8");
  EXPECT_EQ(answer.header(field::cache_control), "no-cache");
  EXPECT_EQ(answer.header("Content-Security-Policy"),
            "default-src 'self'; connect-src 'self' ws: wss:");
  const std::string& html = answer.response.body();
  for (const char* needed :
       {R"(<script src="/assets/uplot.js" defer></script>)",
        R"(<script type="module" src="/assets/app.js"></script>)",
        R"(<link rel="stylesheet" href="/assets/uplot.css">)",
        R"(<link rel="stylesheet" href="/assets/app.css">)", R"(href="/metrics")",
        R"(href="/api/v1/jobs")", R"(href="/healthz")", R"(href="/readyz")", "/ws"}) {
    EXPECT_NE(html.find(needed), std::string::npos) << needed;
  }
  // The CSP forbids inline script: every <script> must load a file, and no element may carry an
  // event handler attribute.
  for (auto at = html.find("<script"); at != std::string::npos; at = html.find("<script", at + 1)) {
    const auto tag = html.substr(at, html.find('>', at) - at);
    EXPECT_NE(tag.find(" src=\"/assets/"), std::string::npos) << tag;
    EXPECT_EQ(html.compare(at + tag.size(), 10, "></script>"), 0) << tag << ": not empty";
  }
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(\son[a-z]+\s*=)"))) << "inline handler";
}

TEST_F(RouterTest, AssetsAreServedWithTheirTypeValidatorsAndPolicy) {
  struct Case {
    const char* path;
    const char* content_type;
    const char* contains;
  };
  const Case cases[] = {
      {"/", "text/html; charset=utf-8", "<!doctype html>"},
      {"/assets/app.js", "text/javascript; charset=utf-8", "new WebSocket("},
      {"/assets/curves.js", "text/javascript; charset=utf-8", "export class Points"},
      {"/assets/format.js", "text/javascript; charset=utf-8", "export function formatEta"},
      {"/assets/app.css", "text/css; charset=utf-8", ".badge"},
      {"/assets/uplot.js", "text/javascript; charset=utf-8", "uPlot"},
      {"/assets/uplot.css", "text/css; charset=utf-8", ".uplot"},
  };
  std::set<std::string> etags;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    const Answer answer = send(request(verb::get, c.path), false);
    EXPECT_EQ(answer.status(), 200u);
    EXPECT_EQ(answer.handler, std::string_view(c.path) == "/" ? "index" : "asset");
    EXPECT_EQ(answer.header(field::content_type), c.content_type);
    EXPECT_NE(answer.response.body().find(c.contains), std::string::npos);
    EXPECT_EQ(answer.header(field::content_length), std::to_string(answer.response.body().size()));
    EXPECT_EQ(answer.header(field::cache_control), "no-cache");
    EXPECT_EQ(answer.header("Content-Security-Policy"), live_page_csp);
    EXPECT_EQ(answer.header("X-Content-Type-Options"), "nosniff");
    const std::string etag = answer.header(field::etag);
    EXPECT_TRUE(std::regex_match(etag, std::regex(R"("[0-9a-f]{32}")"))) << etag;
    etags.insert(etag);

    // A query string does not change what is served.
    const Answer with_query = send(request(verb::get, std::string(c.path) + "?v=2"), false);
    EXPECT_EQ(with_query.status(), 200u);
    EXPECT_EQ(with_query.header(field::etag), etag);

    const Answer head = send(request(verb::head, c.path), false);
    EXPECT_EQ(head.status(), 200u);
    EXPECT_TRUE(head.response.body().empty());
    EXPECT_EQ(head.header(field::content_length), answer.header(field::content_length));
    EXPECT_EQ(head.header(field::etag), etag);
  }
  EXPECT_EQ(etags.size(), std::size(cases)) << "each file has its own ETag";
}

TEST_F(RouterTest, IfNoneMatchWithTheETagAnswers304WithoutABody) {
  const std::string etag = send(request(verb::get, "/assets/app.js"), false).header(field::etag);
  ASSERT_FALSE(etag.empty());
  struct Case {
    std::string if_none_match;
    unsigned status;
  };
  const Case cases[] = {
      {etag, 304},
      {"W/" + etag, 304},  // If-None-Match compares weakly
      {R"("0123", )" + etag, 304},
      {"*", 304},
      {R"("0123456789abcdef0123456789abcdef")", 200},
      {etag.substr(1, etag.size() - 2), 200},  // unquoted: not the same entity tag
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.if_none_match);
    Request conditional = request(verb::get, "/assets/app.js");
    conditional.set(field::if_none_match, c.if_none_match);
    const Answer answer = send(conditional, false);
    EXPECT_EQ(answer.status(), c.status);
    EXPECT_EQ(answer.header(field::etag), etag);
    EXPECT_EQ(answer.header(field::cache_control), "no-cache");
    EXPECT_EQ(answer.header("Content-Security-Policy"), live_page_csp);
    if (c.status == 304) {
      EXPECT_TRUE(answer.response.body().empty());
      // A 304's Content-Length would have to be the 200's; it is left out.
      EXPECT_EQ(answer.response.find(field::content_length), answer.response.end());
    } else {
      EXPECT_FALSE(answer.response.body().empty());
    }
  }
}

TEST_F(RouterTest, UnknownAssetsAndPathTraversalAreNotFound) {
  for (const char* path :
       {"/assets/nope.js", "/assets/", "/assets", "/assets/../x", "/assets/../assets/app.js",
        "/assets/%2e%2e/x", "/assets/..%2fapp.js", "/assets//app.js", "/assets/APP.JS",
        "/assets/app.js/", "/assets/app.js/..", "/assets/./app.js", "/index.html", "/app.js",
        "/web/app.js", "//"}) {
    SCOPED_TRACE(path);
    const Answer answer = get(path);
    expect_error(answer, 404, "not_found");
    EXPECT_EQ(answer.handler, "not_found");
  }
  const Answer post_asset = send(post("/assets/app.js"));
  expect_error(post_asset, 405, "method_not_allowed");
  EXPECT_EQ(post_asset.header(field::allow), "GET, HEAD");
  EXPECT_EQ(send(post("/")).header(field::allow), "GET, HEAD");
}

TEST(StaticAssetsTest, FindsOnlyTheListedPaths) {
  for (const char* path : {"/", "/assets/app.js", "/assets/app.css", "/assets/uplot.js",
                           "/assets/uplot.css"}) {
    const StaticAsset* asset = find_static_asset(path);
    ASSERT_NE(asset, nullptr) << path;
    EXPECT_EQ(asset->path, path);
    EXPECT_FALSE(asset->body.empty()) << path;
  }
  EXPECT_EQ(find_static_asset("/assets/../assets/app.js"), nullptr);
  EXPECT_EQ(find_static_asset(""), nullptr);
}

TEST(StaticAssetsTest, ETagMatchingFollowsIfNoneMatch) {
  const std::string_view etag = R"("abc")";
  struct Case {
    std::string_view header;
    bool matches;
  };
  const Case cases[] = {
      {R"("abc")", true},      {R"(W/"abc")", true},   {R"("x", "abc")", true},
      {R"(  "abc"  ,"x")", true}, {"*", true},          {"", false},
      {R"("abcd")", false},    {"abc", false},         {R"("x",,"y")", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(etag_matches(c.header, etag), c.matches) << c.header;
  }
}

TEST_F(RouterTest, HeadAnswersLikeGetWithoutABody) {
  const Answer full = send(request(verb::get, "/metrics"), false);
  const Answer head = send(request(verb::head, "/metrics"), false);
  EXPECT_EQ(head.status(), 200u);
  EXPECT_TRUE(head.full_body().empty());
  EXPECT_EQ(head.header(field::content_length), std::to_string(full.full_body().size()));
  EXPECT_EQ(head.header(field::content_type), full.header(field::content_type));
}

TEST_F(RouterTest, HeadErrorsCarryNoBodyEither) {
  // A body on a HEAD answer would be read as the next response on a keep-alive connection.
  const Answer not_allowed = send(request(verb::head, "/api/v1/jobs/1/start"), false);
  EXPECT_EQ(not_allowed.status(), 405u);
  EXPECT_TRUE(not_allowed.response.body().empty());
  EXPECT_NE(not_allowed.header(field::content_length), "0");

  Request elsewhere = request(verb::head, "/api/v1/jobs");
  elsewhere.set(field::host, "evil.example.com");
  const Answer misdirected = send(elsewhere, false);
  EXPECT_EQ(misdirected.status(), 421u);
  EXPECT_TRUE(misdirected.response.body().empty());
}

TEST_F(RouterTest, ResponseVersionAndKeepAliveFollowTheRequest) {
  Request old = request(verb::get, "/healthz");
  old.version(10);
  old.erase(field::host);
  old.keep_alive(false);
  const Answer answer = send(old);  // send() checks version and keep-alive
  EXPECT_EQ(answer.response.version(), 10u);
  EXPECT_FALSE(answer.response.keep_alive());

  Request closing = request(verb::get, "/api/v1/nothing");
  closing.keep_alive(false);
  const Answer error = send(closing);
  EXPECT_FALSE(error.response.keep_alive());
  EXPECT_EQ(error.response.version(), 11u);
}

TEST_F(RouterTest, ErrorsEchoingInvalidUtf8StayValidJson) {
  // The 404 names the path; a byte that is not UTF-8 must not make the body invalid JSON.
  const Answer answer = get("/api/v1/jobs/2/metri\x90s");
  expect_error(answer, 404, "not_found");
  EXPECT_NE(answer.response.body().find("\xEF\xBF\xBD"), std::string::npos);
}

TEST_F(RouterTest, UnknownPathsAndWrongMethods) {
  struct Case {
    verb method;
    const char* target;
    unsigned status;
    const char* allow;  ///< expected Allow header on 405
    std::string_view handler;
  };
  const Case cases[] = {
      {verb::get, "/nope", 404, nullptr, "not_found"},
      {verb::get, "/api/v1/jobs/", 404, nullptr, "not_found"},
      {verb::get, "/api/v1/jobs/1/unknown", 404, nullptr, "not_found"},
      {verb::get, "/api/v2/jobs", 404, nullptr, "not_found"},
      {verb::delete_, "/api/v1/jobs", 405, "GET, HEAD, POST", "jobs"},
      {verb::put, "/api/v1/jobs/1", 405, "GET, HEAD", "job"},
      {verb::post, "/metrics", 405, "GET, HEAD", "metrics"},
      {verb::post, "/healthz", 405, "GET, HEAD", "healthz"},
      {verb::get, "/api/v1/jobs/1/start", 405, "POST", "start"},
      {verb::delete_, "/api/v1/jobs/1/stop", 405, "POST", "stop"},
      {verb::post, "/api/v1/jobs/1/metrics", 405, "GET, HEAD", "points"},
      {verb::get, "/api/v1/jobs/1/points", 405, "POST", "push"},
      {verb::put, "/api/v1/jobs/1/finish", 405, "POST", "finish"},
      {verb::post, "/ws", 405, "GET", "ws"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(boost::beast::http::to_string(c.method)) + " " + c.target);
    const Answer answer = send(request(c.method, c.target));
    expect_error(answer, c.status, c.status == 404 ? "not_found" : "method_not_allowed");
    EXPECT_EQ(answer.handler, c.handler);
    if (c.allow != nullptr) {
      EXPECT_EQ(answer.header(field::allow), c.allow);
    }
  }
}

TEST_F(RouterTest, PlainGetOnTheWebSocketPathAsksForAnUpgrade) {
  const Answer answer = get("/ws");
  expect_error(answer, 426, "upgrade_required");
  EXPECT_EQ(answer.handler, "ws");
  EXPECT_EQ(answer.header(field::upgrade), "websocket");
}

// ---------------------------------------------------------------------------------------------
// Jobs

TEST_F(RouterTest, ListsJobSummariesInIdOrderWithExactlyTheContractFields) {
  add_job(make_spec("alpha"));
  add_job(make_spec("beta", 20, core::StartMode::manual));
  add_job(make_spec("gamma", 20, core::StartMode::manual));

  const Answer answer = get("/api/v1/jobs");
  EXPECT_EQ(answer.status(), 200u);
  EXPECT_EQ(answer.handler, "jobs");
  const auto& jobs = answer.json.at("jobs").as_array();
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].at("name"), "alpha");
  EXPECT_EQ(jobs[1].at("name"), "beta");
  EXPECT_EQ(jobs[2].at("name"), "gamma");
  EXPECT_EQ(jobs[0].at("id"), 1);
  EXPECT_EQ(jobs[2].at("id"), 3);

  const std::set<std::string> contract = {
      "id",       "name",     "model",       "state",      "reason",     "epoch",
      "epochs",   "step",     "steps",       "progress",   "loss",       "accuracy",
      "eta_seconds", "created_at", "started_at", "finished_at"};
  const auto& queued = jobs[1].as_object();
  std::set<std::string> keys;
  for (const auto& entry : queued) keys.insert(std::string(entry.key()));
  EXPECT_EQ(keys, contract);

  EXPECT_EQ(queued.at("state"), "queued");
  EXPECT_TRUE(queued.at("reason").is_null());
  EXPECT_EQ(queued.at("model"), "resnet50");
  EXPECT_EQ(queued.at("epoch"), 0);
  EXPECT_EQ(queued.at("epochs"), 2);
  EXPECT_EQ(queued.at("step"), 0);
  EXPECT_EQ(queued.at("steps"), 20);
  EXPECT_EQ(queued.at("progress").to_number<double>(), 0.0);
  EXPECT_TRUE(queued.at("loss").is_null()) << "no loss before the first step";
  EXPECT_TRUE(queued.at("accuracy").is_null());
  EXPECT_TRUE(queued.at("eta_seconds").is_null());
  // ManualClock's wall time starts at 1,800,000,000 s since the epoch.
  EXPECT_EQ(queued.at("created_at"), "2027-01-15T08:00:00.000Z");
  EXPECT_TRUE(queued.at("started_at").is_null());
  EXPECT_TRUE(queued.at("finished_at").is_null());
  // The automatic job started at once.
  EXPECT_EQ(jobs[0].at("state"), "running");
  EXPECT_EQ(jobs[0].at("started_at"), "2027-01-15T08:00:00.000Z");
}

TEST_F(RouterTest, JobListFollowsEveryStepStateChangeAndEtaReset) {
  // The list reuses each job's serialised summary while the job has not moved; after every kind
  // of change it must still equal what GET /api/v1/jobs/{id} (built afresh) says.
  add_job(make_spec("alpha", 40));
  add_job(make_spec("beta", 40));
  add_job(make_spec("gamma", 40, core::StartMode::manual));
  const auto expect_list_matches_details = [&](std::string_view when) {
    const Answer list = get("/api/v1/jobs");
    const auto& jobs = list.json.at("jobs").as_array();
    ASSERT_EQ(jobs.size(), 3u) << when;
    for (const auto& listed : jobs) {
      auto detail = get("/api/v1/jobs/" + std::to_string(listed.at("id").as_int64())).object();
      detail.erase("spec");
      EXPECT_EQ(listed.as_object(), detail) << when;
    }
  };
  expect_list_matches_details("at start");
  run_for(milliseconds(1050));
  expect_list_matches_details("after ten steps");
  EXPECT_EQ(get("/api/v1/jobs").json.at("jobs").as_array()[0].at("step"), 10);
  send(post("/api/v1/jobs/2/stop"));
  send(post("/api/v1/jobs/3/start"));
  expect_list_matches_details("after a stop and a start");
  EXPECT_EQ(get("/api/v1/jobs").json.at("jobs").as_array()[1].at("state"), "stopped");
  scheduler_.set_paused(true);
  scheduler_.set_paused(false);  // resets every running job's ETA without a step
  expect_list_matches_details("after a pause");
  run_for(milliseconds(5000));
  expect_list_matches_details("after completion");
  EXPECT_EQ(get("/api/v1/jobs").json.at("jobs").as_array()[0].at("state"), "complete");
}

TEST_F(RouterTest, RunningJobSummaryShowsProgressLossAndEta) {
  add_job(make_spec("alpha", 20));
  run_for(milliseconds(1050));  // ten steps of 100 ms

  const Answer answer = get("/api/v1/jobs/1");
  EXPECT_EQ(answer.status(), 200u);
  const auto& job = answer.object();
  EXPECT_EQ(job.at("state"), "running");
  EXPECT_EQ(job.at("step"), 10);
  EXPECT_EQ(job.at("epoch"), 1);
  EXPECT_DOUBLE_EQ(job.at("progress").to_number<double>(), 0.5);
  EXPECT_GT(job.at("loss").to_number<double>(), 0.0);
  EXPECT_FALSE(job.contains("loss_nonfinite"));
  EXPECT_GT(job.at("accuracy").to_number<double>(), 0.0);
  EXPECT_NEAR(job.at("eta_seconds").to_number<double>(), 1.0, 0.05);  // 10 steps x 100 ms

  run_for(milliseconds(1100));
  const Answer done = get("/api/v1/jobs/alpha");
  EXPECT_EQ(done.json.at("state"), "complete");
  EXPECT_EQ(done.json.at("epoch"), 2);
  EXPECT_DOUBLE_EQ(done.json.at("progress").to_number<double>(), 1.0);
  EXPECT_TRUE(done.json.at("eta_seconds").is_null());
  EXPECT_EQ(done.json.at("finished_at"), "2027-01-15T08:00:02.000Z");
}

TEST_F(RouterTest, JobByIdOrNameCarriesItsSpec) {
  add_job(make_spec("alpha"));
  core::JobSpec numeric = make_spec("42");
  numeric.faults.fail_at_step = 15;
  add_job(numeric);

  const Answer by_id = get("/api/v1/jobs/2");
  EXPECT_EQ(by_id.status(), 200u);
  EXPECT_EQ(by_id.handler, "job");
  EXPECT_EQ(by_id.json.at("name"), "42");
  const Answer by_name = get("/api/v1/jobs/42");  // no id 42, so the name
  EXPECT_EQ(by_name.status(), 200u);
  EXPECT_EQ(by_name.json.at("id"), 2);
  EXPECT_EQ(by_name.json, by_id.json);
  EXPECT_EQ(get("/api/v1/jobs/alpha").json.at("id"), 1);

  const auto& spec = by_id.json.at("spec");
  EXPECT_EQ(spec, boost::json::parse(config::job_spec_to_json(numeric)));
  EXPECT_EQ(spec.at("faults").at("fail_at_step"), 15);
  EXPECT_EQ(spec.at("step_interval"), "100ms");
  // Parsing the spec back gives the same spec (as at a restart: a job named "42" before
  // all-digit names were refused keeps its name).
  config::SpecDefaults stored;
  stored.allow_numeric_names = true;
  auto reparsed = config::parse_job_spec(boost::json::serialize(spec), "spec", stored);
  ASSERT_TRUE(reparsed.ok()) << config::format_errors(reparsed.errors);
  EXPECT_EQ(reparsed.value, numeric);

  for (const char* missing : {"/api/v1/jobs/99", "/api/v1/jobs/nobody", "/api/v1/jobs/99/metrics",
                              "/api/v1/jobs/nobody/events"}) {
    SCOPED_TRACE(missing);
    expect_error(get(missing), 404, "not_found");
  }
}

TEST_F(RouterTest, PointsPageThroughCommittedAndBufferedSteps) {
  add_job(make_spec("alpha", 40));
  run_for(milliseconds(1050));
  ASSERT_TRUE(flush());
  run_for(milliseconds(1500));  // steps 11..25 stay buffered
  ASSERT_EQ(scheduler_.find(1)->step, 25u);

  const Answer all = get("/api/v1/jobs/1/metrics");
  EXPECT_EQ(all.status(), 200u);
  EXPECT_EQ(all.handler, "points");
  EXPECT_EQ(all.json.at("job_id"), 1);
  ASSERT_EQ(all.json.at("points").as_array().size(), 25u) << "default limit 200 takes them all";
  EXPECT_TRUE(all.json.at("next_after_step").is_null());
  const auto& first = all.json.at("points").as_array()[0].as_object();
  EXPECT_EQ(first.size(), 5u);
  EXPECT_EQ(first.at("step"), 1);
  EXPECT_EQ(first.at("epoch"), 1);
  EXPECT_GT(first.at("loss").to_number<double>(), 0.0);
  EXPECT_GT(first.at("accuracy").to_number<double>(), 0.0);
  EXPECT_EQ(first.at("ts"), "2027-01-15T08:00:00.100Z");
  EXPECT_EQ(all.json.at("points").as_array()[24].at("epoch"), 2);

  struct Page {
    const char* query;
    std::uint64_t first;
    std::uint64_t last;
    std::optional<std::uint64_t> next;
  };
  const Page pages[] = {
      {"?limit=10", 1, 10, 10},
      {"?after_step=10&limit=10", 11, 20, 20},
      {"?after_step=20&limit=10", 21, 25, std::nullopt},
      {"?limit=25", 1, 25, std::nullopt},
      {"?limit=24", 1, 24, 24},
      {"?after_step=5&limit=3&unrelated=x", 6, 8, 8},
  };
  for (const Page& page : pages) {
    SCOPED_TRACE(page.query);
    const Answer answer = get(std::string("/api/v1/jobs/alpha/metrics") + page.query);
    ASSERT_EQ(answer.status(), 200u) << answer.response.body();
    const auto steps = steps_of(answer.json);
    ASSERT_FALSE(steps.empty());
    EXPECT_EQ(steps.front(), page.first);
    EXPECT_EQ(steps.back(), page.last);
    EXPECT_EQ(steps.size(), page.last - page.first + 1);
    if (page.next) {
      EXPECT_EQ(answer.json.at("next_after_step"), *page.next);
    } else {
      EXPECT_TRUE(answer.json.at("next_after_step").is_null());
    }
  }
  const Answer past_end = get("/api/v1/jobs/1/metrics?after_step=25");
  EXPECT_TRUE(past_end.json.at("points").as_array().empty());
  EXPECT_TRUE(past_end.json.at("next_after_step").is_null());
}

TEST_F(RouterTest, BadPointQueryParametersAreRefusedByName) {
  add_job(make_spec("alpha"));
  const char* cases[][2] = {
      {"limit=0", "limit"},          {"limit=10001", "limit"},
      {"limit=abc", "limit"},        {"limit=", "limit"},
      {"limit=-5", "limit"},         {"after_step=-1", "after_step"},
      {"after_step=1.5", "after_step"}, {"after_step=99999999999999999999999", "after_step"},
      {"max_points=1", "max_points"}, {"max_points=10001", "max_points"},
      {"max_points=many", "max_points"}, {"limit=%zz", "limit"},
  };
  for (const auto& [query, parameter] : cases) {
    SCOPED_TRACE(query);
    const Answer answer = get(std::string("/api/v1/jobs/1/metrics?") + query);
    expect_error(answer, 400, "invalid_parameter");
    EXPECT_TRUE(answer.error_message().starts_with(parameter)) << answer.error_message();
  }
  EXPECT_EQ(get("/api/v1/jobs/1/metrics?limit=10000&max_points=2").status(), 200u);
}

TEST_F(RouterTest, DownsamplingKeepsTheGlobalMinimumAndMaximumLoss) {
  core::JobSpec spec = make_spec("noisy", 3000);
  spec.step_interval = milliseconds(10);
  // A flat, noisy curve: the extremes fall anywhere, not simply at the ends.
  spec.simulate.initial_loss = 1.0;
  spec.simulate.final_loss = 1.0;
  spec.simulate.noise = 0.5;
  add_job(spec);
  run_for(milliseconds(20'000));
  ASSERT_TRUE(flush());
  run_for(milliseconds(10'010));  // the last 1000 steps stay buffered
  ASSERT_EQ(scheduler_.find(1)->step, 3000u);

  const Answer full = get("/api/v1/jobs/1/metrics?limit=10000");
  const auto& points = full.json.at("points").as_array();
  ASSERT_EQ(points.size(), 3000u);
  std::uint64_t min_step = 0;
  std::uint64_t max_step = 0;
  double min_loss = std::numeric_limits<double>::infinity();
  double max_loss = -std::numeric_limits<double>::infinity();
  for (const auto& point : points) {
    const double loss = point.at("loss").to_number<double>();
    if (loss < min_loss) {
      min_loss = loss;
      min_step = point.at("step").to_number<std::uint64_t>();
    }
    if (loss > max_loss) {
      max_loss = loss;
      max_step = point.at("step").to_number<std::uint64_t>();
    }
  }
  // Neither extreme is an end point (which every bucket scheme would keep by luck); one is
  // committed and the other still buffered (steps 2001..3000).
  ASSERT_GT(min_step, 1u);
  ASSERT_LT(min_step, 3000u);
  ASSERT_GT(max_step, 1u);
  ASSERT_LT(max_step, 3000u);
  ASSERT_NE(min_step > 2000, max_step > 2000) << "min at " << min_step << ", max at " << max_step;

  for (const bool flushed : {false, true}) {
    if (flushed) {
      ASSERT_TRUE(flush());
    }
    for (const std::uint64_t max_points : {2u, 3u, 50u, 999u}) {
      SCOPED_TRACE(std::string(flushed ? "all committed" : "partly buffered") + ", max_points " +
                   std::to_string(max_points));
      const Answer answer =
          get("/api/v1/jobs/noisy/metrics?max_points=" + std::to_string(max_points));
      ASSERT_EQ(answer.status(), 200u) << answer.response.body();
      const auto steps = steps_of(answer.json);
      EXPECT_LE(steps.size(), max_points);
      EXPECT_GE(steps.size(), 2u);
      EXPECT_TRUE(std::is_sorted(steps.begin(), steps.end()));
      EXPECT_EQ(std::adjacent_find(steps.begin(), steps.end()), steps.end()) << "duplicates";
      EXPECT_NE(std::find(steps.begin(), steps.end(), min_step), steps.end()) << "min lost";
      EXPECT_NE(std::find(steps.begin(), steps.end(), max_step), steps.end()) << "max lost";
      EXPECT_TRUE(answer.json.at("next_after_step").is_null());
    }
  }

  // after_step narrows the downsampled range.
  const Answer tail = get("/api/v1/jobs/1/metrics?after_step=2900&max_points=10");
  const auto tail_steps = steps_of(tail.json);
  ASSERT_FALSE(tail_steps.empty());
  EXPECT_GT(tail_steps.front(), 2900u);
  EXPECT_LE(tail_steps.size(), 10u);
  // A range smaller than max_points comes back whole.
  const Answer small = get("/api/v1/jobs/1/metrics?after_step=2990&max_points=100");
  EXPECT_EQ(steps_of(small.json).size(), 10u);
}

TEST_F(RouterTest, NonFiniteLossIsNullWithAFlagAndTheJobFails) {
  core::JobSpec spec = make_spec("exploding");
  spec.faults.nan_at_step = 3;
  add_job(spec);
  run_for(milliseconds(500));

  const Answer job = get("/api/v1/jobs/exploding");
  EXPECT_EQ(job.json.at("state"), "failed");
  EXPECT_EQ(job.json.at("reason"), "nonfinite_loss");
  EXPECT_EQ(job.json.at("step"), 3);
  EXPECT_TRUE(job.json.at("loss").is_null());
  EXPECT_EQ(job.json.at("loss_nonfinite"), "nan");
  EXPECT_NE(job.json.at("finished_at"), nullptr);

  const Answer points = get("/api/v1/jobs/exploding/metrics");
  const auto& list = points.json.at("points").as_array();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_TRUE(list[2].at("loss").is_null());
  EXPECT_EQ(list[2].at("loss_nonfinite"), "nan");
  EXPECT_FALSE(list[1].as_object().contains("loss_nonfinite"));
  EXPECT_EQ(points.response.body().find("NaN"), std::string::npos);
  EXPECT_EQ(points.response.body().find("nan,"), std::string::npos);

  const Answer events = get("/api/v1/jobs/1/events");
  EXPECT_EQ(events.status(), 200u);
  EXPECT_EQ(events.handler, "events");
  EXPECT_EQ(events.json, boost::json::parse(R"({"job_id":1,"events":[
      {"from":"queued","to":"running","reason":null,"ts":"2027-01-15T08:00:00.000Z","step":0},
      {"from":"running","to":"failed","reason":"nonfinite_loss","ts":"2027-01-15T08:00:00.300Z",
       "step":3}
  ]})"));
}

// ---------------------------------------------------------------------------------------------
// Mutations

TEST_F(RouterTest, SubmitCreatesAJobAtItsLocation) {
  const Answer created = send(post("/api/v1/jobs", R"({"name":"fresh","model":"bert",
      "epochs":3,"steps_per_epoch":50,"start":"manual","faults":{"nan_at_step":7}})"));
  ASSERT_EQ(created.status(), 201u) << created.response.body();
  EXPECT_EQ(created.handler, "submit");
  EXPECT_EQ(created.header(field::location), "/api/v1/jobs/1");
  EXPECT_EQ(created.json.at("name"), "fresh");
  EXPECT_EQ(created.json.at("state"), "queued");
  EXPECT_EQ(created.json.at("steps"), 150);
  EXPECT_EQ(created.json.at("spec").at("model"), "bert");
  EXPECT_EQ(created.json.at("spec").at("step_interval"), "250ms") << "the daemon's default";
  EXPECT_EQ(created.json.at("spec").at("faults").at("nan_at_step"), 7);

  const Answer fetched = get(created.header(field::location));
  EXPECT_EQ(fetched.status(), 200u);
  EXPECT_EQ(fetched.json, created.json);
  // The store learnt of it too: it is flushed with the job row before any of its points.
  ASSERT_TRUE(flush());
  auto stored = store_.startup_store().load_jobs();
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].name, "fresh");

  const Answer again = send(post("/api/v1/jobs", R"({"name":"fresh","epochs":1})"));
  expect_error(again, 409, "conflict");
  EXPECT_NE(again.error_message().find("fresh"), std::string::npos);
}

TEST_F(RouterTest, SubmitRefusesBadSpecsWithEveryLocatedError) {
  const Answer invalid = send(post("/api/v1/jobs",
                                   "{\"name\": \"bad name!\",\n \"epochs\": \"ten\",\n"
                                   " \"colour\": \"blue\"}"));
  expect_error(invalid, 400, "invalid_spec");
  EXPECT_EQ(invalid.handler, "submit");
  const auto& details = invalid.json.at("error").at("details").as_array();
  ASSERT_GE(details.size(), 3u) << invalid.response.body();
  bool names_epochs = false;
  for (const auto& detail : details) {
    const std::string text(detail.as_string());
    EXPECT_TRUE(text.starts_with("request body:")) << text;
    names_epochs = names_epochs || (text.starts_with("request body:2:") &&
                                    text.find("epochs") != std::string::npos);
  }
  EXPECT_TRUE(names_epochs) << invalid.response.body();
  EXPECT_NE(invalid.error_message().find("request body:"), std::string::npos);

  const Answer broken = send(post("/api/v1/jobs", "{\"name\": \"x\",\n \"epochs\": tru }"));
  expect_error(broken, 400, "invalid_spec");
  ASSERT_EQ(broken.json.at("error").at("details").as_array().size(), 1u);
  EXPECT_EQ(broken.json.at("error").at("details").at(0).as_string().subview(0, 17),
            "request body:2:12");

  // YAML is not JSON, even though the spec parser would read it.
  expect_error(send(post("/api/v1/jobs", "name: yaml-job\nepochs: 1\n")), 400, "invalid_spec");
  expect_error(send(post("/api/v1/jobs", "[1, 2]")), 400, "invalid_spec");
  EXPECT_TRUE(scheduler_.jobs().empty());
}

TEST_F(RouterTest, SubmitNeedsAJsonContentType) {
  Request no_type = post("/api/v1/jobs", R"({"name":"a","epochs":1})");
  no_type.erase(field::content_type);
  expect_error(send(no_type), 415, "unsupported_media_type");

  Request yaml = post("/api/v1/jobs", R"({"name":"a","epochs":1})");
  yaml.set(field::content_type, "application/yaml");
  expect_error(send(yaml), 415, "unsupported_media_type");

  Request with_charset = post("/api/v1/jobs", R"({"name":"a","epochs":1})");
  with_charset.set(field::content_type, "Application/JSON; charset=utf-8");
  EXPECT_EQ(send(with_charset).status(), 201u);
}

TEST_F(RouterTest, MutationsNeedTheBearerToken) {
  add_job(make_spec("manual", 20, core::StartMode::manual));
  struct Case {
    const char* name;
    std::optional<std::string> authorization;
    bool accepted;
  };
  const std::string good(token);
  const Case cases[] = {
      {"missing", std::nullopt, false},
      {"empty", "", false},
      {"scheme only", "Bearer", false},
      {"empty token", "Bearer ", false},
      {"wrong token", "Bearer not-the-token", false},
      {"prefix of the token", "Bearer " + good.substr(0, good.size() - 1), false},
      {"token plus a character", "Bearer " + good + "x", false},
      {"basic scheme", "Basic " + good, false},
      {"token without scheme", good, false},
      {"lower-case scheme", "bearer " + good, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (const char* target : {"/api/v1/jobs/1/stop", "/api/v1/jobs"}) {
      // An invalid spec: accepted, it gets 400 and creates nothing either way.
      const Answer answer =
          send(post(target, R"({"name":"never","epochs":"ten"})", c.authorization));
      if (c.accepted) {
        EXPECT_NE(answer.status(), 401u) << target;
        continue;
      }
      expect_error(answer, 401, "unauthorized");
      EXPECT_TRUE(answer.header(field::www_authenticate).starts_with("Bearer"))
          << answer.header(field::www_authenticate);
    }
  }
  // Nothing refused had any effect; the one accepted stop did.
  EXPECT_EQ(scheduler_.find(1)->state, JobState::stopped);
  EXPECT_EQ(scheduler_.find("never"), nullptr);

  // 401 comes before the job is looked up, so it tells nothing about which jobs exist.
  expect_error(send(post("/api/v1/jobs/999/start", "", std::nullopt)), 401, "unauthorized");

  // Without a configured token nothing may change, whatever is sent.
  access_.api_token.clear();
  const Answer disabled = send(post("/api/v1/jobs/1/start", "", "Bearer "));
  expect_error(disabled, 401, "unauthorized");
  EXPECT_NE(disabled.error_message().find("no API token"), std::string::npos);
  expect_error(send(post("/api/v1/jobs/1/start", "", "Bearer " + good)), 401, "unauthorized");
  // Reads need no token.
  EXPECT_EQ(get("/api/v1/jobs").status(), 200u);
}

TEST_F(RouterTest, StartAndStopFollowTheJobStates) {
  add_job(make_spec("manual", 20, core::StartMode::manual));
  run_for(milliseconds(500));
  EXPECT_EQ(get("/api/v1/jobs/1").json.at("state"), "queued") << "manual jobs wait for a user";

  const Answer started = send(post("/api/v1/jobs/manual/start"));
  ASSERT_EQ(started.status(), 200u) << started.response.body();
  EXPECT_EQ(started.handler, "start");
  EXPECT_EQ(started.json.at("state"), "running");
  EXPECT_EQ(started.json.at("name"), "manual");
  EXPECT_FALSE(started.json.as_object().contains("spec")) << "a summary, not the detail";

  expect_error(send(post("/api/v1/jobs/1/start")), 409, "conflict");

  run_for(milliseconds(350));
  const Answer stopped = send(post("/api/v1/jobs/1/stop"));
  ASSERT_EQ(stopped.status(), 200u) << stopped.response.body();
  EXPECT_EQ(stopped.handler, "stop");
  EXPECT_EQ(stopped.json.at("state"), "stopped");
  EXPECT_EQ(stopped.json.at("reason"), "user");
  EXPECT_EQ(stopped.json.at("step"), 3);
  EXPECT_FALSE(stopped.json.at("finished_at").is_null());

  const Answer again = send(post("/api/v1/jobs/1/stop"));
  expect_error(again, 409, "conflict");
  EXPECT_NE(again.error_message().find("stopped"), std::string::npos) << again.error_message();
  expect_error(send(post("/api/v1/jobs/1/start")), 409, "conflict");
  expect_error(send(post("/api/v1/jobs/99/stop")), 404, "not_found");
  expect_error(send(post("/api/v1/jobs/ghost/start")), 404, "not_found");

  // The transitions are visible before the store flushes them.
  const Answer events = get("/api/v1/jobs/1/events");
  const auto& list = events.json.at("events").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].at("to"), "stopped");
  EXPECT_EQ(list[1].at("reason"), "user");

  // A stopping daemon takes no new jobs; it still answers for the ones it has.
  jobs_.close();
  expect_error(send(post("/api/v1/jobs", R"({"name":"x","epochs":1})")), 503, "unavailable");
  EXPECT_EQ(get("/api/v1/jobs/1").status(), 200u);
}

TEST_F(RouterTest, SubmitAtTheJobLimitIs503UnlessAFinishedJobMakesRoom) {
  for (std::size_t i = 0; i < max_jobs; ++i) {
    add_job(make_spec("job-" + std::to_string(i), 20, core::StartMode::manual));
  }
  const Answer refused = send(post("/api/v1/jobs", R"({"name":"one-too-many","epochs":1})"));
  expect_error(refused, 503, "unavailable");
  EXPECT_NE(refused.error_message().find("scheduler.max_jobs = 100"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(scheduler_.find("one-too-many"), nullptr);

  // A finished job makes room; the API then says where it went.
  EXPECT_EQ(send(post("/api/v1/jobs/1/stop")).status(), 200u);
  EXPECT_EQ(send(post("/api/v1/jobs", R"({"name":"one-more","epochs":1})")).status(), 201u);
  for (const char* ref : {"/api/v1/jobs/1", "/api/v1/jobs/job-0"}) {
    const Answer gone = get(ref);
    expect_error(gone, 404, "not_found");
    EXPECT_NE(gone.error_message().find("no longer held in memory (scheduler.max_jobs)"),
              std::string::npos)
        << gone.error_message();
  }
  expect_error(get("/api/v1/jobs/999"), 404, "not_found");
  EXPECT_EQ(get("/api/v1/jobs/999").error_message().find("memory"), std::string::npos);
  // Its history is still served, from the database, by id or by name.
  const Answer events = get("/api/v1/jobs/job-0/events");
  ASSERT_EQ(events.status(), 200u);
  EXPECT_EQ(events.object().at("job_id"), 1);
  const auto& transitions = events.object().at("events").as_array();
  ASSERT_FALSE(transitions.empty());
  EXPECT_EQ(transitions.back().at("to"), "stopped");
  for (const char* points : {"/api/v1/jobs/1/metrics", "/api/v1/jobs/1/metrics?max_points=100"}) {
    const Answer answer = get(points);
    EXPECT_EQ(answer.status(), 200u) << points;
    EXPECT_EQ(answer.object().at("job_id"), 1) << points;
  }
  Request points = post("/api/v1/jobs/1/points", R"([{"step":1,"loss":1.0}])");
  expect_error(send(points), 409, "job_finished");
}

TEST_F(RouterTest, ACommandJobOverTheApiIs403UnlessAllowed) {
  const std::string body =
      R"({"name":"remote-shell","kind":"command","command":["sh","-c","id"]})";
  const Answer refused = send(post("/api/v1/jobs", body));
  expect_error(refused, 403, "command_jobs_disabled");
  EXPECT_NE(refused.error_message().find("api.allow_command_jobs"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(scheduler_.find("remote-shell"), nullptr);
  EXPECT_EQ(send(post("/api/v1/jobs", R"({"name":"simulated","epochs":1})")).status(), 201u)
      << "simulated jobs are not affected";
}

// ---------------------------------------------------------------------------------------------
// Host and Origin

TEST_F(RouterTest, TwoHostHeadersAre400WhicheverComesFirst) {
  for (const char* target : {"/healthz", "/api/v1/jobs", "/ws"}) {
    SCOPED_TRACE(target);
    Request req = request(verb::get, target);
    req.insert(field::host, "evil.example.com");
    expect_error(send(req), 400, "duplicate_host");
    const auto upgrade = check_websocket_upgrade(req, access_);
    ASSERT_TRUE(upgrade);
    EXPECT_EQ(upgrade->result_int(), 400u);
  }
}

TEST_F(RouterTest, AnHttp11RequestWithoutHostIs400AndHttp10NeedsNone) {
  for (const char* target : {"/healthz", "/api/v1/jobs", "/nowhere", "/ws"}) {
    SCOPED_TRACE(target);
    Request req = request(verb::get, target);
    req.erase(field::host);
    expect_error(send(req), 400, "missing_host");
    req.version(10);
    const Answer answer = send(req);
    EXPECT_NE(answer.status(), 400u);
    EXPECT_NE(answer.status(), 421u);
  }
  Request upgrade = request(verb::get, "/ws");
  upgrade.erase(field::host);
  const auto refused = check_websocket_upgrade(upgrade, access_);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->result_int(), 400u);
}

TEST_F(RouterTest, HostMustBeOneThisServerAnswersFor) {
  struct Case {
    std::optional<std::string> host;
    bool allowed;
  };
  const Case cases[] = {
      {"", true},  // allowed by RFC 9112 for a target without an authority
      {"127.0.0.1:9786", true},
      {"127.0.0.1", true},
      {"localhost", true},
      {"LocalHost:8080", true},
      {"localhost.", true},
      {"[::1]:9786", true},
      {"[::1]", true},
      {"vapor.example.com", true},
      {"VAPOR.example.COM:9786", true},
      {"proxy.example.com:8443", true},
      {"proxy.example.com", false},
      {"proxy.example.com:9786", false},
      {"evil.example.com", false},
      {"127.0.0.1.evil.example.com", false},
      {"localhost.evil.example.com:9786", false},
      {"localhost@evil.example.com", false},
      {"localhost:notaport", false},
      {"localhost:99999", false},
      {"[::1", false},
      {"::1", false},
      {"192.168.1.10:9786", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.host ? "Host: " + *c.host : std::string("no Host"));
    for (const char* target : {"/healthz", "/api/v1/jobs", "/nowhere"}) {
      Request req = request(verb::get, target);
      if (c.host) {
        req.set(field::host, *c.host);
      } else {
        req.erase(field::host);
      }
      const Answer answer = send(req);
      if (c.allowed) {
        EXPECT_NE(answer.status(), 421u) << target;
      } else {
        expect_error(answer, 421, "misdirected_request");
      }
    }
  }
  // 421 comes before anything else, the token check included.
  Request misdirected = post("/api/v1/jobs/1/stop", "", std::nullopt);
  misdirected.set(field::host, "evil.example.com");
  expect_error(send(misdirected), 421, "misdirected_request");
}

TEST_F(RouterTest, AnAbsoluteFormTargetIsServedForItsOwnHostOnly) {
  // RFC 9112 section 3.2.2: the target's authority replaces Host, so a served Host header
  // cannot smuggle a request for another host past the DNS-rebinding guard.
  Request proxied = request(verb::get, "http://evil.example.com/api/v1/jobs");
  expect_error(send(proxied), 421, "misdirected_request");
  EXPECT_TRUE(check_websocket_upgrade(request(verb::get, "http://evil.example.com/ws"), access_));

  Request served = request(verb::get, "HTTP://localhost:9786/api/v1/jobs?limit=1");
  served.set(field::host, "evil.example.com");  // ignored: the target names the host
  EXPECT_EQ(send(served).status(), 200u);
  EXPECT_EQ(send(request(verb::get, "http://127.0.0.1:9786"), false).status(), 200u) << "index";
  EXPECT_FALSE(check_websocket_upgrade(request(verb::get, "http://127.0.0.1:9786/ws"), access_));

  expect_error(send(request(verb::get, "http://user@127.0.0.1:9786/healthz")), 400, "bad_target");
  expect_error(send(request(verb::get, "http:///healthz")), 400, "bad_target");
  Request mutation = post("http://evil.example.com/api/v1/jobs/1/stop");
  expect_error(send(mutation), 421, "misdirected_request");
}

TEST(AccessTest, ListenAddressMatchesWithItsPortOrNone) {
  AccessPolicy access;
  access.listen_host = "10.0.0.5";
  access.listen_port = 9786;
  EXPECT_TRUE(host_allowed("10.0.0.5:9786", access));
  EXPECT_TRUE(host_allowed("10.0.0.5", access));
  EXPECT_FALSE(host_allowed("10.0.0.5:80", access));
  EXPECT_FALSE(host_allowed("10.0.0.6:9786", access));
  EXPECT_TRUE(host_allowed("localhost:9786", access));

  access.listen_host = "::1";  // an IPv6 listen address is written without brackets in config
  EXPECT_TRUE(host_allowed("[::1]:9786", access));
  access.listen_host = "fd00::5";
  EXPECT_TRUE(host_allowed("[FD00::5]:9786", access));
  EXPECT_FALSE(host_allowed("[fd00::6]:9786", access));
}

TEST(AccessTest, ConstantTimeEqualIsPlainEquality) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("abc", ""));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
  EXPECT_FALSE(constant_time_equal("abc", std::string_view("abc\0", 4)));
}

TEST_F(RouterTest, WebSocketUpgradeChecksHostThenOrigin) {
  struct Case {
    const char* host;
    std::optional<std::string> origin;
    unsigned status;  ///< 0: may proceed
  };
  const Case cases[] = {
      {"127.0.0.1:9786", std::nullopt, 0},
      {"127.0.0.1:9786", "http://127.0.0.1:9786", 0},
      {"127.0.0.1:9786", "HTTP://127.0.0.1:9786/", 0},
      {"localhost", "http://localhost", 0},
      {"localhost", "http://localhost:80", 0},
      {"localhost:9786", "http://localhost:9786", 0},
      {"vapor.example.com", "https://vapor.example.com", 0},
      {"127.0.0.1:9786", "https://grafana.example.com", 0},
      {"127.0.0.1:9786", "https://GRAFANA.example.com/", 0},
      {"127.0.0.1:9786", "https://grafana.example.com:443", 0},
      {"127.0.0.1:9786", "http://grafana.example.com", 403},
      {"127.0.0.1:9786", "https://grafana.example.com:8443", 403},
      {"127.0.0.1:9786", "http://localhost:9786", 403},
      {"127.0.0.1:9786", "http://127.0.0.1:9787", 403},
      {"127.0.0.1:9786", "http://evil.example.com", 403},
      {"127.0.0.1:9786", "null", 403},
      {"127.0.0.1:9786", "", 403},
      {"localhost", "http://localhost:9786", 403},
      {"evil.example.com", std::nullopt, 421},
      {"evil.example.com", "http://evil.example.com", 421},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string("Host: ") + c.host + ", Origin: " + c.origin.value_or("(none)"));
    Request upgrade = request(verb::get, "/ws");
    upgrade.set(field::host, c.host);
    upgrade.set(field::upgrade, "websocket");
    upgrade.set(field::connection, "Upgrade");
    if (c.origin) upgrade.set(field::origin, *c.origin);
    const auto refusal = check_websocket_upgrade(upgrade, access_);
    if (c.status == 0) {
      EXPECT_FALSE(refusal.has_value()) << (refusal ? refusal->body() : "");
      continue;
    }
    ASSERT_TRUE(refusal.has_value());
    EXPECT_EQ(refusal->result_int(), c.status);
    EXPECT_EQ(refusal->version(), 11u);
    auto body = boost::json::parse(refusal->body());
    EXPECT_EQ(body.at("error").at("code"), c.status == 421 ? "misdirected_request" : "forbidden");
  }
}

// ---------------------------------------------------------------------------------------------
// JSON codec

TEST(JsonCodecTest, NonFiniteNumbersBecomeNullWithAFlag) {
  boost::json::object object;
  put_number(object, "a", 1.5);
  put_number(object, "b", std::numeric_limits<double>::quiet_NaN());
  put_number(object, "c", std::numeric_limits<double>::infinity());
  put_number(object, "d", -std::numeric_limits<double>::infinity());
  EXPECT_EQ(boost::json::serialize(object),
            R"({"a":1.5E0,"b":null,"b_nonfinite":"nan","c":null,"c_nonfinite":"inf",)"
            R"("d":null,"d_nonfinite":"-inf"})");
}

TEST(JsonCodecTest, TimesAreRfc3339UtcWithMilliseconds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(rfc3339(core::WallTime(milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339(core::WallTime(milliseconds(1'795'926'382'381))),
            "2026-11-29T04:26:22.381Z");
  EXPECT_EQ(rfc3339(core::WallTime(std::chrono::microseconds(1'795'926'382'381'999))),
            "2026-11-29T04:26:22.381Z")
      << "truncated, not rounded";
}

TEST(JsonCodecTest, FeedMessages) {
  core::StepRecorded step;
  step.job_id = 4;
  step.step = 12;
  step.epoch = 2;
  step.loss = std::numeric_limits<double>::infinity();
  step.accuracy = 0.5;
  step.progress = 0.25;
  step.ts = core::WallTime(std::chrono::milliseconds(1'795'926'382'381));
  EXPECT_EQ(boost::json::value(point_message(step)), boost::json::parse(R"({"type":"point",
      "job_id":4,"step":12,"epoch":2,"loss":null,"loss_nonfinite":"inf","accuracy":0.5,
      "progress":0.25,"eta_seconds":null,"ts":"2026-11-29T04:26:22.381Z"})"));
  step.eta_seconds = 30.0;
  EXPECT_EQ(point_message(step).at("eta_seconds"), 30.0);
  step.scalars = {{"val_loss", 0.25}, {"lr", std::numeric_limits<double>::quiet_NaN()}};
  const auto with_scalars = point_message(step);
  EXPECT_EQ(with_scalars.at("scalars"), boost::json::parse(R"({"val_loss":0.25,"lr":null})"));
  EXPECT_EQ(with_scalars.at("scalars_nonfinite"), boost::json::parse(R"({"lr":"nan"})"));

  const core::JobStateChanged changed{4, JobState::running, JobState::failed, "stalled",
                                      step.ts};
  EXPECT_EQ(boost::json::value(state_message(changed)),
            boost::json::parse(R"({"type":"state","job_id":4,"from":"running","to":"failed",
                "reason":"stalled","ts":"2026-11-29T04:26:22.381Z"})"));
}

}  // namespace
}  // namespace vapor::http
