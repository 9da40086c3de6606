#include "http/router.hpp"

#include "support/utf8.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <exception>
#include <limits>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>

#include "config/config_error.hpp"
#include "http/json_codec.hpp"
#include "http/static_assets.hpp"
#include "runtime/scheduler.hpp"
#include "store/sqlite_job_store.hpp"

namespace vapor::http {
namespace {

namespace beast_http = boost::beast::http;
using beast_http::field;
using beast_http::verb;

constexpr std::string_view json_type = "application/json";
constexpr std::string_view metrics_type = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view jobs_path = "/api/v1/jobs";

constexpr std::uint64_t default_limit = 200;
constexpr std::uint64_t max_limit = 10'000;
constexpr std::uint64_t max_max_points = 10'000;


// ---------------------------------------------------------------------------------------------
// Targets

/// What a request's path names, before its method is looked at.
enum class Resource {
  index,
  asset,
  metrics,
  healthz,
  readyz,
  ws,
  jobs,
  job,
  points,
  events,
  start,
  stop,
  unknown,
};

struct Target {
  Resource resource = Resource::unknown;
  std::string job_ref;                ///< the {id} segment, percent-decoded
  std::string_view query;             ///< after '?', still encoded
  const StaticAsset* asset = nullptr;  ///< for index and asset
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Decodes %XX escapes (and '+' as a space in a query); nothing when an escape is malformed.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Target parse_target(std::string_view target) {
  Target out;
  const auto question = target.find('?');
  if (question != std::string_view::npos) {
    out.query = target.substr(question + 1);
    target = target.substr(0, question);
  }
  if (target == "/") out.resource = Resource::index;
  // Only the listed files: "/assets/../x" or an unknown name is not found.
  if (target == "/" || target.starts_with("/assets/")) {
    out.asset = find_static_asset(target);
    if (out.asset != nullptr && out.resource != Resource::index) out.resource = Resource::asset;
  }
  if (target == "/metrics") out.resource = Resource::metrics;
  if (target == "/healthz") out.resource = Resource::healthz;
  if (target == "/readyz") out.resource = Resource::readyz;
  if (target == "/ws") out.resource = Resource::ws;
  if (target == jobs_path) out.resource = Resource::jobs;
  if (out.resource != Resource::unknown) return out;

  if (!target.starts_with(jobs_path) || target.size() <= jobs_path.size() + 1 ||
      target[jobs_path.size()] != '/') {
    return out;
  }
  const std::string_view rest = target.substr(jobs_path.size() + 1);
  const auto slash = rest.find('/');
  const std::string_view id = rest.substr(0, slash);
  const std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  auto decoded = percent_decode(id, false);
  if (id.empty() || !decoded) return out;
  if (slash == std::string_view::npos) {
    out.resource = Resource::job;
  } else if (tail == "metrics") {
    out.resource = Resource::points;
  } else if (tail == "events") {
    out.resource = Resource::events;
  } else if (tail == "start") {
    out.resource = Resource::start;
  } else if (tail == "stop") {
    out.resource = Resource::stop;
  } else {
    return out;
  }
  out.job_ref = std::move(*decoded);
  return out;
}

/// The methods a resource answers, as sent in `Allow`.
std::string_view allowed_methods(Resource resource) {
  switch (resource) {
    case Resource::jobs: return "GET, HEAD, POST";
    case Resource::start:
    case Resource::stop: return "POST";
    case Resource::ws: return "GET";
    default: return "GET, HEAD";
  }
}

bool method_allowed(Resource resource, verb method) {
  switch (resource) {
    case Resource::jobs: return method == verb::get || method == verb::head || method == verb::post;
    case Resource::start:
    case Resource::stop: return method == verb::post;
    case Resource::ws: return method == verb::get;
    case Resource::unknown: return true;
    default: return method == verb::get || method == verb::head;
  }
}

std::string_view handler_name(Resource resource, verb method) {
  switch (resource) {
    case Resource::index: return "index";
    case Resource::asset: return "asset";
    case Resource::metrics: return "metrics";
    case Resource::healthz: return "healthz";
    case Resource::readyz: return "readyz";
    case Resource::ws: return "ws";
    case Resource::jobs: return method == verb::post ? "submit" : "jobs";
    case Resource::job: return "job";
    case Resource::points: return "points";
    case Resource::events: return "events";
    case Resource::start: return "start";
    case Resource::stop: return "stop";
    case Resource::unknown: return "not_found";
  }
  return "not_found";
}

// ---------------------------------------------------------------------------------------------
// Responses

Response make_response(unsigned status, std::string_view content_type, std::string body,
                       unsigned version, bool keep_alive) {
  Response response;
  response.result(status);
  response.version(version);
  response.keep_alive(keep_alive);
  response.set(field::content_type, content_type);
  response.set("X-Content-Type-Options", "nosniff");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

Response json_response(unsigned status, const boost::json::value& body, const Request& request) {
  Response response = make_response(status, json_type, boost::json::serialize(body),
                                    request.version(), request.keep_alive());
  response.set(field::cache_control, "no-store");
  return response;
}

Response error_with_details(unsigned status, std::string_view code, std::string_view message,
                            boost::json::array details, const Request& request) {
  boost::json::object error{{"code", code}, {"message", utf8::replace_invalid(message)}};
  if (!details.empty()) error["details"] = std::move(details);
  return json_response(status, boost::json::object{{"error", std::move(error)}}, request);
}

Response error(unsigned status, std::string_view code, std::string_view message,
               const Request& request) {
  return error_response(status, code, message, request.version(), request.keep_alive());
}

Response control_error(const ControlError& failure, const Request& request) {
  switch (failure.kind) {
    case ControlFailure::not_found: return error(404, "not_found", failure.message, request);
    case ControlFailure::conflict: return error(409, "conflict", failure.message, request);
    case ControlFailure::invalid: return error(400, "invalid_request", failure.message, request);
    case ControlFailure::unavailable: return error(503, "unavailable", failure.message, request);
  }
  return error(500, "internal_error", failure.message, request);
}

Response unauthorized(TokenCheck check, const Request& request) {
  std::string_view message;
  std::string_view challenge = R"(Bearer realm="vapor")";
  switch (check) {
    case TokenCheck::no_token_set:
      message = "changes through the API are disabled: no API token is configured (api.token_file)";
      challenge = R"(Bearer realm="vapor", error="invalid_token")";
      break;
    case TokenCheck::wrong_token:
      message = "the bearer token is not valid";
      challenge = R"(Bearer realm="vapor", error="invalid_token")";
      break;
    case TokenCheck::missing:
    case TokenCheck::accepted:
      message = "this request changes state and needs an 'Authorization: Bearer <token>' header";
      break;
  }
  Response response = error(401, "unauthorized", message, request);
  response.set(field::www_authenticate, challenge);
  return response;
}

// ---------------------------------------------------------------------------------------------
// Helpers

std::string_view field_value(const Request& request, field name) {
  const auto found = request.find(name);
  if (found == request.end()) return {};
  const auto value = found->value();
  return {value.data(), value.size()};
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool is_json_content_type(std::string_view content_type) {
  const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  return media.size() == json_type.size() &&
         std::equal(media.begin(), media.end(), json_type.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
         });
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, failure] = std::from_chars(text.data(), end, value);
  if (failure != std::errc() || stop != end) return std::nullopt;
  return value;
}

/// A job by numeric id, else by name (a name may be all digits).
const runtime::Job* find_job(const runtime::Scheduler& scheduler, std::string_view ref) {
  if (const auto id = parse_unsigned(ref);
      id && *id <= static_cast<std::uint64_t>(std::numeric_limits<core::JobId>::max())) {
    if (const runtime::Job* job = scheduler.find(static_cast<core::JobId>(*id))) return job;
  }
  return scheduler.find(ref);
}

Response job_not_found(std::string_view ref, const Request& request) {
  return error(404, "not_found", "no job with id or name \"" + std::string(ref) + "\"", request);
}

/// A query parameter that failed validation: which one and why.
struct BadParameter {
  std::string message;
};

/// The decoded value of query parameter `name` (the last one if repeated), or nothing.
std::optional<std::string> query_value(std::string_view query, std::string_view name,
                                       std::optional<BadParameter>& bad) {
  std::optional<std::string> found;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto equals = pair.find('=');
    auto key = percent_decode(pair.substr(0, equals), true);
    if (!key || *key != name) continue;
    auto value = percent_decode(
        equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1), true);
    if (!value) {
      bad = BadParameter{std::string(name) + ": malformed percent-encoding"};
      return std::nullopt;
    }
    found = std::move(*value);
  }
  return found;
}

/// Reads an optional integer parameter in [min, max]; does nothing once `bad` is set, so that
/// several parameters can be read in a row and the first problem reported.
std::optional<std::uint64_t> integer_parameter(std::string_view query, std::string_view name,
                                               std::uint64_t min, std::uint64_t max,
                                               std::optional<BadParameter>& bad) {
  if (bad) return std::nullopt;
  const auto text = query_value(query, name, bad);
  if (!text || bad) return std::nullopt;
  const auto value = parse_unsigned(*text);
  if (!value || *value < min || *value > max) {
    std::string expected = "expected an integer";
    if (max == std::numeric_limits<std::uint64_t>::max()) {
      expected += min == 0 ? " >= 0" : " >= " + std::to_string(min);
    } else {
      expected += " from " + std::to_string(min) + " to " + std::to_string(max);
    }
    bad = BadParameter{std::string(name) + ": " + expected + ", got \"" + *text + "\""};
    return std::nullopt;
  }
  return value;
}

/// Checks that a body is JSON, locating the first syntax error as the config errors do.
std::optional<config::ConfigError> json_syntax_error(std::string_view body) {
  boost::json::stream_parser parser;
  boost::system::error_code failure;
  const std::size_t consumed = parser.write(body.data(), body.size(), failure);
  if (!failure) parser.finish(failure);
  if (!failure) return std::nullopt;
  config::ConfigError located;
  located.file = "request body";
  located.line = 1;
  located.column = 1;
  for (std::size_t i = 0; i < std::min(consumed, body.size()); ++i) {
    if (body[i] == '\n') {
      ++located.line;
      located.column = 1;
    } else {
      ++located.column;
    }
  }
  located.message = "not valid JSON (" + failure.message() + ")";
  return located;
}

// ---------------------------------------------------------------------------------------------
// Endpoints

/// A file of the live page; 304 without a body when If-None-Match names its ETag. The page is
/// revalidated on every load (no-cache), so an upgraded vapord is never paired with a stale app.js.
Response static_file(const StaticAsset& asset, const Request& request) {
  Response response;
  if (etag_matches(field_value(request, field::if_none_match), asset.etag)) {
    // No Content-Length: on a 304 it would have to be the 200's (RFC 9110, 8.6).
    response.result(beast_http::status::not_modified);
    response.version(request.version());
    response.keep_alive(request.keep_alive());
  } else {
    response = make_response(200, asset.content_type, std::string(asset.body), request.version(),
                             request.keep_alive());
  }
  response.set(field::etag, asset.etag);
  response.set(field::cache_control, "no-cache");
  response.set("Content-Security-Policy", live_page_csp);
  response.set("X-Content-Type-Options", "nosniff");
  return response;
}

Response list_jobs(const Request& request, RouterContext& context) {
  std::string body = "{\"jobs\":";
  context.job_list.append_array(body, context.scheduler.jobs());
  body.push_back('}');
  Response response =
      make_response(200, json_type, std::move(body), request.version(), request.keep_alive());
  response.set(field::cache_control, "no-store");
  return response;
}

Response get_job(const Target& target, const Request& request, RouterContext& context) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) return job_not_found(target.job_ref, request);
  return json_response(200, job_detail(*job), request);
}

Response get_points(const Target& target, const Request& request, RouterContext& context) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) return job_not_found(target.job_ref, request);

  std::optional<BadParameter> bad;
  const auto after_step = integer_parameter(target.query, "after_step", 0,
                                            std::numeric_limits<std::uint64_t>::max(), bad)
                              .value_or(0);
  const auto limit =
      integer_parameter(target.query, "limit", 1, max_limit, bad).value_or(default_limit);
  const auto max_points = integer_parameter(target.query, "max_points", 2, max_max_points, bad);
  if (bad) return error(400, "invalid_parameter", bad->message, request);

  boost::json::object out{{"job_id", job->id}};
  boost::json::array points;
  boost::json::value next_after_step = nullptr;
  if (max_points) {
    // The whole range after after_step, up to the job's latest step, in at most max_points
    // (`limit` pages plain reads only: a chart wants the whole run, however long).
    auto loaded = context.store.load_points_downsampled(job->id, after_step, job->step,
                                                        static_cast<std::size_t>(*max_points));
    if (!loaded) return error(500, "internal_error", loaded.error().message, request);
    for (const auto& point : *loaded) points.push_back(point_json(point));
  } else {
    // One more than asked tells whether another page follows.
    auto loaded = context.store.load_points(job->id, after_step,
                                            static_cast<std::size_t>(limit) + 1);
    if (!loaded) return error(500, "internal_error", loaded.error().message, request);
    if (loaded->size() > limit) {
      loaded->resize(static_cast<std::size_t>(limit));
      next_after_step = loaded->back().step;
    }
    for (const auto& point : *loaded) points.push_back(point_json(point));
  }
  out["points"] = std::move(points);
  out["next_after_step"] = std::move(next_after_step);
  return json_response(200, out, request);
}

Response get_events(const Target& target, const Request& request, RouterContext& context) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) return job_not_found(target.job_ref, request);
  auto loaded = context.store.load_transitions(job->id);
  if (!loaded) return error(500, "internal_error", loaded.error().message, request);
  boost::json::array events;
  for (const auto& transition : *loaded) events.push_back(transition_json(transition));
  return json_response(200, boost::json::object{{"job_id", job->id}, {"events", std::move(events)}},
                       request);
}

Response submit_job(const Request& request, RouterContext& context) {
  const std::string_view content_type = field_value(request, field::content_type);
  if (!is_json_content_type(content_type)) {
    return error(415, "unsupported_media_type",
                 "a job spec is sent as JSON with 'Content-Type: application/json'" +
                     (content_type.empty() ? std::string(" (none was given)")
                                           : ", not '" + std::string(content_type) + "'"),
                 request);
  }
  const std::string& body = request.body();
  std::vector<config::ConfigError> errors;
  if (auto syntax = json_syntax_error(body)) {
    errors.push_back(std::move(*syntax));
  } else {
    auto parsed = config::parse_job_spec(body, "request body", context.spec_defaults);
    if (parsed.ok()) {
      core::JobSpec spec = std::move(parsed.value);
      if (const runtime::Job* existing = context.scheduler.find(spec.name)) {
        return error(409, "conflict",
                     "a job named \"" + spec.name + "\" exists (id " +
                         std::to_string(existing->id) + "); job names are unique",
                     request);
      }
      core::JobId id = 0;
      if (auto refused = context.control.submit(std::move(spec), id)) {
        return control_error(*refused, request);
      }
      const runtime::Job* job = context.scheduler.find(id);
      if (job == nullptr) {
        return error(500, "internal_error",
                     "job " + std::to_string(id) + " was submitted but the scheduler does not "
                     "know it",
                     request);
      }
      Response response = json_response(201, job_detail(*job), request);
      response.set(field::location, std::string(jobs_path) + "/" + std::to_string(id));
      return response;
    }
    errors = std::move(parsed.errors);
  }

  boost::json::array details;
  for (const auto& located : errors) details.emplace_back(located.to_string());
  const std::string message =
      errors.size() == 1
          ? errors.front().to_string()
          : std::to_string(errors.size()) + " errors in the job spec, the first: " +
                errors.front().to_string();
  return error_with_details(400, "invalid_spec", message, std::move(details), request);
}

Response change_job(Resource action, const Target& target, const Request& request,
                    RouterContext& context) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) return job_not_found(target.job_ref, request);
  const core::JobId id = job->id;
  const auto refused = action == Resource::start ? context.control.start(id)
                                                 : context.control.stop(id);
  if (refused) return control_error(*refused, request);
  job = context.scheduler.find(id);
  if (job == nullptr) return job_not_found(target.job_ref, request);
  return json_response(200, job_summary(*job), request);
}

Response answer(const Target& target, const Request& request, RouterContext& context) {
  switch (target.resource) {
    case Resource::index:
    case Resource::asset:
      if (target.asset != nullptr) return static_file(*target.asset, request);
      break;
    case Resource::metrics: {
      if (!context.render_metrics) {
        return error(503, "unavailable", "metrics are not available yet", request);
      }
      return make_response(200, metrics_type, context.render_metrics(), request.version(),
                           request.keep_alive());
    }
    case Resource::healthz:
      return json_response(200, boost::json::object{{"status", "ok"}}, request);
    case Resource::readyz: {
      const bool ready = context.ready && context.ready();
      return json_response(ready ? 200 : 503,
                           boost::json::object{{"status", ready ? "ready" : "not_ready"}},
                           request);
    }
    case Resource::ws: {
      Response response = error(426, "upgrade_required",
                                "/ws is a WebSocket endpoint; connect with a WebSocket client",
                                request);
      response.set(field::upgrade, "websocket");
      return response;
    }
    case Resource::jobs:
      return request.method() == verb::post ? submit_job(request, context)
                                            : list_jobs(request, context);
    case Resource::job: return get_job(target, request, context);
    case Resource::points: return get_points(target, request, context);
    case Resource::events: return get_events(target, request, context);
    case Resource::start:
    case Resource::stop: return change_job(target.resource, target, request, context);
    case Resource::unknown: break;
  }
  std::string_view path = request.target();
  path = path.substr(0, path.find('?'));
  return error(404, "not_found", "nothing at " + std::string(path), request);
}

/// HEAD gets the headers a GET would get, Content-Length included, without the body: on every
/// answer, errors too, or a keep-alive client would read the body as the next response.
Response strip_body_for_head(Response response, const Request& request) {
  if (request.method() == verb::head) {
    const std::size_t size = response.body().size();
    response.body().clear();
    response.content_length(size);
  }
  return response;
}

/// RFC 9112 section 3.2: an HTTP/1.1 request without a Host header is a bad request (an empty
/// one is allowed; HTTP/1.0 has none).
std::optional<Response> missing_host(const Request& request) {
  if (request.version() < 11 || request.find(field::host) != request.end()) return std::nullopt;
  return error(400, "missing_host", "an HTTP/1.1 request needs a Host header", request);
}

Response route_checked(const Target& target, const Request& request, RouterContext& context) {
  const verb method = request.method();

  if (auto refused = missing_host(request)) return std::move(*refused);
  if (!host_allowed(field_value(request, field::host), context.access)) {
    return error(421, "misdirected_request",
                 "this server does not answer for host \"" +
                     std::string(field_value(request, field::host)) + "\"",
                 request);
  }
  if (!method_allowed(target.resource, method)) {
    Response response =
        error(405, "method_not_allowed",
              std::string(request.method_string()) + " is not allowed here; allowed: " +
                  std::string(allowed_methods(target.resource)),
              request);
    response.set(field::allow, allowed_methods(target.resource));
    return response;
  }
  if (method == verb::post) {
    const TokenCheck check =
        check_bearer_token(field_value(request, field::authorization), context.access);
    if (check != TokenCheck::accepted) return unauthorized(check, request);
  }

  return answer(target, request, context);
}

}  // namespace

Response error_response(unsigned status, std::string_view code, std::string_view message,
                        unsigned version, bool keep_alive) {
  const boost::json::object body{
      {"error", boost::json::object{{"code", code}, {"message", utf8::replace_invalid(message)}}}};
  Response response =
      make_response(status, json_type, boost::json::serialize(body), version, keep_alive);
  response.set(field::cache_control, "no-store");
  return response;
}

Routed route(const Request& request, RouterContext& context) {
  std::string_view handler = "not_found";
  try {
    const Target target = parse_target(request.target());
    handler = handler_name(target.resource, request.method());
    return {strip_body_for_head(route_checked(target, request, context), request), handler};
  } catch (const std::exception& failure) {
    return {strip_body_for_head(error(500, "internal_error", failure.what(), request), request),
            handler};
  } catch (...) {
    return {strip_body_for_head(error(500, "internal_error", "unexpected failure", request),
                                request),
            handler};
  }
}

std::optional<Response> check_websocket_upgrade(const Request& request,
                                                const AccessPolicy& access) {
  if (auto refused = missing_host(request)) return refused;
  const std::string_view host = field_value(request, field::host);
  if (!host_allowed(host, access)) {
    return error(421, "misdirected_request",
                 "this server does not answer for host \"" + std::string(host) + "\"", request);
  }
  const auto origin = request.find(field::origin);
  std::optional<std::string_view> origin_value;
  if (origin != request.end()) origin_value = std::string_view(origin->value().data(),
                                                               origin->value().size());
  if (!origin_allowed(origin_value, host, access)) {
    return error(403, "forbidden",
                 "WebSocket connections from origin \"" + std::string(*origin_value) +
                     "\" are not allowed (see api.allowed_origins)",
                 request);
  }
  return std::nullopt;
}

}  // namespace vapor::http
