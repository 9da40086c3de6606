// The HTTP API (`http::route`) behind Beast's request parser, as a session calls it: the input is
// raw request bytes (skipped unless Beast parses them, as a session would answer those 400).
// Each input gets a fresh copy of one prepared scheduler (finished, failed, running and manual
// jobs) so that start, stop and submit never leak into the next input; the store (:memory:,
// holding those jobs' points and transitions, one with a NaN loss) is only read. Checks: no
// crash, a known status and never 500 (the store is healthy), a known handler, no CR/LF in a
// header, Content-Length true to the body, no body for HEAD, and every JSON body valid JSON with
// {"error":{"code","message"}} on 4xx/5xx. An upgrade request also goes through
// check_websocket_upgrade, as a session does.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json.hpp>

#include "config/queue_file.hpp"
#include "core/job_spec.hpp"
#include "fuzz_check.hpp"
#include "http/access.hpp"
#include "http/request_target.hpp"
#include "http/router.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "store/sqlite_job_store.hpp"
#include "store/store_thread.hpp"

namespace vapor::fuzz {
namespace {

namespace beast_http = boost::beast::http;
using std::chrono::milliseconds;

constexpr std::string_view token = "fuzz-token";  // also in fuzz/dict/router.dict

/// The app's JobControl reduced to the scheduler: no store writes, so the shared store stays as
/// prepared and each input sees the same world.
class SchedulerControl final : public http::JobControl {
 public:
  SchedulerControl(runtime::Scheduler& scheduler, const runtime::Clock& clock)
      : scheduler_(scheduler), clock_(clock) {}

  std::optional<http::ControlError> submit(core::JobSpec spec, core::JobId& id,
                                           std::string&) override {
    if (scheduler_.find(spec.name) != nullptr) {
      return http::ControlError{http::ControlFailure::conflict, "name taken"};
    }
    id = scheduler_.max_id() + 1;
    if (auto added = scheduler_.add_job(id, std::move(spec), clock_.wall_now()); !added) {
      return http::ControlError{http::ControlFailure::invalid, added.error().message};
    }
    return std::nullopt;
  }
  std::optional<http::ControlError> start(core::JobId id) override {
    return forward(id, [&] { return scheduler_.start(id); });
  }
  std::optional<http::ControlError> stop(core::JobId id) override {
    return forward(id, [&] { return scheduler_.stop(id); });
  }
  std::optional<http::ControlError> push_points(core::JobId id,
                                                const std::vector<core::ReportedPoint>& points,
                                                std::size_t& accepted) override {
    accepted = 0;
    for (const auto& point : points) {
      if (auto refused = forward(id, [&] { return scheduler_.record_point(id, point); })) {
        return refused;
      }
      ++accepted;
    }
    return std::nullopt;
  }
  std::optional<http::ControlError> finish(core::JobId id, core::JobState state,
                                           std::string reason) override {
    return forward(id, [&]() -> Result<void> {
      scheduler_.finish(id, {state, std::move(reason), std::nullopt, {}});
      return {};
    });
  }
  [[nodiscard]] bool push_token_matches(core::JobId, std::string_view) const override {
    return false;  // only the API token opens anything here
  }
  [[nodiscard]] std::optional<core::JobId> retired(std::string_view) const override {
    return std::nullopt;
  }

 private:
  template <class Change>
  std::optional<http::ControlError> forward(core::JobId id, Change change) {
    if (scheduler_.find(id) == nullptr) {
      return http::ControlError{http::ControlFailure::not_found, "no job"};
    }
    if (auto changed = change(); !changed) {
      return http::ControlError{http::ControlFailure::conflict, changed.error().message};
    }
    return std::nullopt;
  }

  runtime::Scheduler& scheduler_;
  const runtime::Clock& clock_;
};

core::JobSpec make_spec(std::string name, std::uint64_t epochs, core::StartMode start) {
  core::JobSpec spec;
  spec.name = std::move(name);
  spec.model = "resnet18";
  spec.epochs = epochs;
  spec.steps_per_epoch = 10;
  spec.step_interval = milliseconds(100);
  spec.seed = core::seed_from_name(spec.name);
  spec.start = start;
  return spec;
}

/// Adds the same four jobs and runs 1.5 s of them: one complete (20 steps), one running with a
/// recorded NaN at step 5, one failed at step 3, one manual and queued.
void prepare(runtime::Scheduler& scheduler, runtime::ManualClock& clock,
             store::SqliteJobStore* store) {
  core::JobSpec complete = make_spec("mnist-convnet", 2, core::StartMode::automatic);
  core::JobSpec running = make_spec("cifar10-resnet18", 4, core::StartMode::automatic);
  running.faults.nan_at_step = 5;
  running.on_nonfinite = core::NonFinitePolicy::record;
  core::JobSpec failing = make_spec("transformer-crash", 3, core::StartMode::automatic);
  failing.faults.fail_at_step = 3;
  core::JobSpec manual = make_spec("vit-manual-start", 2, core::StartMode::manual);
  {
    const auto hold = scheduler.hold_dispatch();
    core::JobId id = 0;
    for (core::JobSpec* spec : {&complete, &running, &failing, &manual}) {
      ++id;
      if (store != nullptr) {
        store->add_job({id, spec->name, config::job_spec_to_json(*spec), clock.wall_now()});
      }
      check(scheduler.add_job(id, *spec, clock.wall_now()).has_value(), "cannot add a job");
    }
  }
  for (int tick = 0; tick < 25; ++tick) {
    clock.advance(milliseconds(100));
    scheduler.advance();
  }
}

/// Built once: the store, the prepared scheduler each input copies, and what the router reads.
struct World {
  runtime::ManualClock store_clock;
  runtime::ManualClock clock;
  std::unique_ptr<store::SqliteJobStore> store;
  /// The router's history, read as the daemon reads it (answers through the loop); the thread
  /// is not started, so each read runs at once and `ioc.poll()` delivers its answer.
  boost::asio::io_context ioc;
  std::optional<store::StoreThread> history;
  std::optional<runtime::Scheduler> prepared;
  http::AccessPolicy access;
  /// VAPOR_FUZZ_VERBOSE=1: print each answer (for checking seeds and reading a crash input).
  bool verbose = std::getenv("VAPOR_FUZZ_VERBOSE") != nullptr;

  World() {
    store::StoreOptions options;
    options.path = ":memory:";
    auto opened = store::SqliteJobStore::open(options);
    if (!opened) throw std::runtime_error(opened.error().message);
    store = std::move(*opened);

    const runtime::SchedulerOptions scheduler_options{4, std::chrono::seconds(60), 100};
    // The store's copy of the history comes from a twin run (same jobs, same clock steps),
    // because the prepared scheduler must have no listener.
    runtime::Scheduler recorder(scheduler_options, store_clock);
    recorder.add_listener(*store);
    prepare(recorder, store_clock, store.get());
    if (auto flushed = store->flush(); !flushed) throw std::runtime_error(flushed.error().message);
    history.emplace(ioc.get_executor(), std::move(store), 1'000'000);

    prepared.emplace(scheduler_options, clock);
    prepare(*prepared, clock, nullptr);

    access.api_token = std::string(token);
    access.listen_host = "127.0.0.1";
    access.listen_port = 9786;
    access.allowed_hosts = {"vapor.example.com", "proxy.example.com:8443"};
    access.allowed_origins = {"https://grafana.example.com"};
  }
};

World& world() {
  static World instance;
  return instance;
}

/// The request in `bytes`, if Beast reads a complete one (limits as vapord's defaults).
std::optional<http::Request> parse_request(std::string_view bytes) {
  beast_http::request_parser<beast_http::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(1024 * 1024);
  parser.eager(true);
  boost::system::error_code failure;
  std::size_t offset = 0;
  while (!parser.is_done() && offset < bytes.size()) {
    const std::size_t used =
        parser.put(boost::asio::const_buffer(bytes.data() + offset, bytes.size() - offset), failure);
    offset += used;
    // Every byte left was offered: Beast must not be called again without more (it asserts so).
    if (failure == beast_http::error::need_more) {
      failure = {};
      break;
    }
    if (failure) return std::nullopt;
    if (used == 0) break;
  }
  if (!parser.is_done()) {
    if (!parser.got_some()) return std::nullopt;  // put_eof requires some input
    parser.put_eof(failure);
    if (failure || !parser.is_done()) return std::nullopt;
  }
  return parser.release();
}

bool is_json(const http::Response& response) {
  const auto type = response[beast_http::field::content_type];
  return std::string_view(type.data(), type.size()).starts_with("application/json");
}

void check_response(const http::Response& response, const http::Request& request,
                    std::string_view where, const std::string* shared_body = nullptr) {
  const std::string context = std::string(where) + " answered " +
                              std::to_string(response.result_int()) + " to " +
                              std::string(request.method_string()) + " " +
                              std::string(request.target());
  check(beast_http::int_to_status(response.result_int()) != beast_http::status::unknown,
        context + ": not a known status");
  check(response.result_int() != 500, context + ": " + response.body());
  for (const auto& header : response) {
    const std::string_view value(header.value().data(), header.value().size());
    check(value.find_first_of("\r\n") == std::string_view::npos,
          context + ": CR or LF in a header value");
  }
  const bool head = request.method() == beast_http::verb::head;
  if (head) {
    check(response.body().empty() && shared_body == nullptr,
          context + ": a body on a HEAD answer");
  }
  const std::size_t body_size = response.body().size() + (shared_body ? shared_body->size() : 0);
  if (const auto length = response.find(beast_http::field::content_length);
      length != response.end() && !head) {
    check(std::string_view(length->value().data(), length->value().size()) ==
              std::to_string(body_size),
          context + ": Content-Length is not the body's size");
  }
  if (!is_json(response) || head) return;
  boost::system::error_code failure;
  const boost::json::value body = boost::json::parse(response.body(), failure);
  check(!failure, context + ": the body is not JSON: " + response.body());
  check(body.is_object(), context + ": the body is not a JSON object");
  if (response.result_int() >= 400) {
    const auto* error = body.as_object().if_contains("error");
    check(error != nullptr && error->is_object() &&
              error->as_object().contains("code") && error->as_object().at("code").is_string() &&
              error->as_object().contains("message") &&
              error->as_object().at("message").is_string(),
          context + ": an error without {\"error\":{\"code\",\"message\"}}: " + response.body());
  }
}

const std::set<std::string_view> handlers = {
    "metrics", "jobs", "job", "points", "events", "submit", "start",
    "stop", "log", "push", "finish", "healthz", "readyz", "index", "asset", "ws", "not_found"};

}  // namespace
}  // namespace vapor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vapor::fuzz::world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vapor;
  const auto request =
      fuzz::parse_request(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!request) return 0;

  fuzz::World& world = fuzz::world();
  runtime::Scheduler scheduler = *world.prepared;
  fuzz::SchedulerControl control(scheduler, world.clock);
  http::RouterContext context{scheduler,
                              *world.history,
                              control,
                              world.access,
                              config::SpecDefaults{std::chrono::milliseconds(250)},
                              [] {
                                return http::MetricsText{
                                    "# TYPE vapor_up gauge\nvapor_up 1\n",
                                    std::make_shared<const std::string>("vapor_job_step 1\n")};
                              },
                              [] { return true; }};
  std::optional<http::Routed> answered;
  int answers = 0;
  http::route(*request, context, [&](http::Routed routed) {
    ++answers;
    answered = std::move(routed);
  });
  world.ioc.restart();
  world.ioc.poll();
  fuzz::check(answers == 1, "route answered " + std::to_string(answers) + " times, not once");
  const http::Routed& routed = *answered;
  if (world.verbose) {
    std::fprintf(stderr, "%s %s -> %u (%.*s) %s\n", std::string(request->method_string()).c_str(),
                 std::string(request->target()).c_str(), routed.response.result_int(),
                 static_cast<int>(routed.handler.size()), routed.handler.data(),
                 routed.response.body().substr(0, 300).c_str());
  }
  fuzz::check(fuzz::handlers.contains(routed.handler),
              "unknown handler label: " + std::string(routed.handler));
  fuzz::check_response(routed.response, *request, "route", routed.shared_body.get());

  // Sessions ask this only of upgrade requests (GET with Upgrade: websocket), never of HEAD.
  if (!boost::beast::websocket::is_upgrade(*request)) return 0;
  if (const auto refused = http::check_websocket_upgrade(*request, world.access)) {
    const auto status = refused->result_int();
    fuzz::check(status == 400 || status == 421 || status == 403,
                "a WebSocket refusal that is not 400 (no Host, or several), 421 or 403");
    const auto absolute = http::absolute_form(request->target());
    fuzz::check(status != 400 || request->count(boost::beast::http::field::host) != 1 ||
                    (absolute && !absolute->valid),
                "a 400 refusal of a WebSocket upgrade that has exactly one Host header and a "
                "well-formed target");
    fuzz::check_response(*refused, *request, "check_websocket_upgrade");
  }
  return 0;
}
