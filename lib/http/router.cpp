#include "http/router.hpp"

#include <exception>
#include <string>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>

#include "http/job_endpoints.hpp"
#include "http/request_target.hpp"
#include "http/responses.hpp"
#include "http/static_assets.hpp"
#include "runtime/scheduler.hpp"

namespace vapor::http {
namespace {

namespace beast_http = boost::beast::http;
using beast_http::field;
using beast_http::verb;

constexpr std::string_view metrics_type = "text/plain; version=0.0.4; charset=utf-8";

// ---------------------------------------------------------------------------------------------
// Endpoints outside /api/v1/jobs

Response not_found(const Request& request) {
  std::string_view path = request.target();
  path = path.substr(0, path.find('?'));
  return error(404, "not_found", "nothing at " + std::string(path), request);
}

/// A file of the live page; 304 without a body when If-None-Match names its ETag. The page is
/// revalidated on every load (no-cache), so an upgraded vapord is never paired with a stale app.js.
Response static_file(const Target& target, const Request& request, RouterContext&) {
  if (target.asset == nullptr) return not_found(request);
  const StaticAsset& asset = *target.asset;
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

Response get_metrics(const Target&, const Request& request, RouterContext& context,
                     std::shared_ptr<const std::string>& shared_body) {
  if (!context.render_metrics) {
    return error(503, "unavailable", "metrics are not available yet", request);
  }
  MetricsText text = context.render_metrics();
  Response response = make_response(200, metrics_type, std::move(text.head), request.version(),
                                    request.keep_alive());
  shared_body = std::move(text.shared);
  if (shared_body) response.content_length(response.body().size() + shared_body->size());
  return response;
}

Response get_healthz(const Target&, const Request& request, RouterContext&) {
  return json_response(200, boost::json::object{{"status", "ok"}}, request);
}

Response get_readyz(const Target&, const Request& request, RouterContext& context) {
  const bool ready = context.ready && context.ready();
  return json_response(ready ? 200 : 503,
                       boost::json::object{{"status", ready ? "ready" : "not_ready"}}, request);
}

/// A plain GET of /ws: the session upgrades real WebSocket requests before routing.
Response upgrade_required(const Target&, const Request& request, RouterContext&) {
  Response response = error(426, "upgrade_required",
                            "/ws is a WebSocket endpoint; connect with a WebSocket client", request);
  response.set(field::upgrade, "websocket");
  return response;
}

// ---------------------------------------------------------------------------------------------
// The route table

/// Methods a route answers, as bits.
enum Methods : unsigned { get = 1, head = 2, post = 4 };

unsigned method_bit(verb method) {
  switch (method) {
    case verb::get: return Methods::get;
    case verb::head: return Methods::head;
    case verb::post: return Methods::post;
    default: return 0;
  }
}

using Endpoint = Response (*)(const Target&, const Request&, RouterContext&);
/// An endpoint whose answer ends in a body part shared with other answers (GET /metrics).
using SharedEndpoint = Response (*)(const Target&, const Request&, RouterContext&,
                                    std::shared_ptr<const std::string>& shared_body);

/// One resource and method(s) → one endpoint, with the `handler` label it is counted under.
/// An endpoint that reads history answers later, through `deferred` (then `endpoint` is null).
struct Route {
  Resource resource;
  unsigned methods;
  std::string_view handler;
  Endpoint endpoint;
  DeferredEndpoint deferred = nullptr;
  SharedEndpoint shared = nullptr;
};

constexpr Route routes[] = {
    {Resource::index, get | head, "index", static_file},
    {Resource::asset, get | head, "asset", static_file},
    {Resource::metrics, get | head, "metrics", nullptr, nullptr, get_metrics},
    {Resource::healthz, get | head, "healthz", get_healthz},
    {Resource::readyz, get | head, "readyz", get_readyz},
    {Resource::ws, get, "ws", upgrade_required},
    {Resource::jobs, get | head, "jobs", list_jobs},
    {Resource::jobs, post, "submit", submit_job},
    {Resource::job, get | head, "job", get_job},
    {Resource::points, get | head, "points", nullptr, get_points},
    {Resource::events, get | head, "events", nullptr, get_events},
    {Resource::log, get | head, "log", nullptr, get_log},
    {Resource::start, post, "start", start_job},
    {Resource::stop, post, "stop", stop_job},
    {Resource::push, post, "push", push_points},
    {Resource::finish, post, "finish", finish_job},
};

/// The route for a resource and method; for a method the resource does not answer, its first
/// route (so that a refused request is still counted under the resource's handler).
const Route* find_route(Resource resource, verb method, bool& method_allowed) {
  const Route* first = nullptr;
  for (const auto& route : routes) {
    if (route.resource != resource) continue;
    if ((route.methods & method_bit(method)) != 0) {
      method_allowed = true;
      return &route;
    }
    if (first == nullptr) first = &route;
  }
  method_allowed = false;
  return first;
}

/// What `Allow` lists for a resource.
std::string allowed_methods(Resource resource) {
  unsigned methods = 0;
  for (const auto& route : routes) {
    if (route.resource == resource) methods |= route.methods;
  }
  std::string allow;
  for (const auto& [bit, name] : {std::pair{get, "GET"}, {head, "HEAD"}, {post, "POST"}}) {
    if ((methods & bit) == 0) continue;
    if (!allow.empty()) allow += ", ";
    allow += name;
  }
  return allow;
}

/// HEAD gets the headers a GET would get, Content-Length included, without the body: on every
/// answer, errors too, or a keep-alive client would read the body as the next response.
/// HEAD: the GET's headers, Content-Length included (`shared_bytes` of a shared body part as
/// well), without the body.
Response strip_body_for_head(Response response, bool head, std::size_t shared_bytes = 0) {
  if (head) {
    const std::size_t size = response.body().size() + shared_bytes;
    response.body().clear();
    response.content_length(size);
  }
  return response;
}

/// RFC 9112 section 3.2: an HTTP/1.1 request without a Host header, or with more than one, is a
/// bad request (an empty one is allowed; HTTP/1.0 has none).
std::optional<Response> missing_host(const Request& request) {
  // Two Host headers name two servers: which one a proxy and vapord each believe is anyone's
  // guess, so neither is (RFC 9112 section 3.2).
  if (request.count(field::host) > 1) {
    return error(400, "duplicate_host", "a request carries one Host header, not several",
                 request);
  }
  if (request.version() < 11 || request.find(field::host) != request.end()) return std::nullopt;
  return error(400, "missing_host", "an HTTP/1.1 request needs a Host header", request);
}

Response misdirected(std::string_view host, const Request& request) {
  return error(421, "misdirected_request",
               "this server does not answer for host \"" + std::string(host) + "\"", request);
}

/// The target to route and the host it is for: the Host header and the target as sent, or, for
/// an absolute-form target, its authority and its origin form (RFC 9112 section 3.2.2: the Host
/// header is then ignored; the guard against DNS rebinding checks the authority instead).
struct RoutedTarget {
  std::optional<AbsoluteForm> absolute;
  std::string_view target;
  std::string_view host;
  bool absolute_valid = true;
};

RoutedTarget routed_target(const Request& request) {
  RoutedTarget routed;
  routed.target = request.target();
  routed.host = field_value(request, field::host);
  routed.absolute = absolute_form(routed.target);
  if (routed.absolute) {
    routed.target = routed.absolute->origin_form;
    routed.host = routed.absolute->authority;
    routed.absolute_valid = routed.absolute->valid;
  }
  return routed;
}

Response bad_absolute_form(const Request& request) {
  return error(400, "bad_target",
               "an absolute-form request target needs a host and no user information: \"" +
                   std::string(request.target()) + "\"",
               request);
}

/// A push job's own token opens its points and finish, and nothing else.
bool push_token_accepted(const Target& target, std::string_view authorization,
                         const RouterContext& context) {
  if (target.resource != Resource::push && target.resource != Resource::finish) return false;
  const auto token = bearer_token(authorization);
  if (!token) return false;
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  return job != nullptr && context.control.push_token_matches(job->id, *token);
}

/// Host, method and token checks in that order: the refusal, or nothing when the endpoint may
/// answer.
std::optional<Response> refusal(const Target& target, const Route* route, bool method_allowed,
                                std::string_view host, const Request& request,
                                RouterContext& context) {
  if (auto refused = missing_host(request)) return std::move(*refused);
  if (!host_allowed(host, context.access)) return misdirected(host, request);
  if (route == nullptr) return not_found(request);
  if (!method_allowed) {
    const std::string allow = allowed_methods(target.resource);
    Response response = error(405, "method_not_allowed",
                              std::string(request.method_string()) +
                                  " is not allowed here; allowed: " + allow,
                              request);
    response.set(field::allow, allow);
    return response;
  }
  if (request.method() == verb::post) {
    const std::string_view authorization = field_value(request, field::authorization);
    const TokenCheck check = check_bearer_token(authorization, context.access);
    if (check != TokenCheck::accepted && !push_token_accepted(target, authorization, context)) {
      return unauthorized(check, request);
    }
  }
  return std::nullopt;
}

}  // namespace

void route(const Request& request, RouterContext& context, Respond respond) {
  std::string_view handler = "not_found";
  const bool head = request.method() == verb::head;
  std::optional<Response> answer;
  std::shared_ptr<const std::string> shared_body;
  try {
    const RoutedTarget routed = routed_target(request);
    if (!routed.absolute_valid) {
      respond({strip_body_for_head(bad_absolute_form(request), head), handler});
      return;
    }
    const Target target = parse_target(routed.target);
    bool method_allowed = false;
    const Route* found = find_route(target.resource, request.method(), method_allowed);
    if (found != nullptr) handler = found->handler;
    answer = refusal(target, found, method_allowed, routed.host, request, context);
    if (!answer && found->deferred != nullptr) {
      found->deferred(target, request, context,
                      [respond, handler, head](Response response) {
                        respond({strip_body_for_head(std::move(response), head), handler});
                      });
      return;
    }
    if (!answer && found->shared != nullptr) {
      answer = found->shared(target, request, context, shared_body);
    } else if (!answer) {
      answer = found->endpoint(target, request, context);
    }
  } catch (const std::exception& failure) {
    answer = error(500, "internal_error", failure.what(), request);
  } catch (...) {
    answer = error(500, "internal_error", "unexpected failure", request);
  }
  if (answer->result_int() >= 500) shared_body.reset();  // failed after the endpoint ran
  const std::size_t shared_bytes = shared_body ? shared_body->size() : 0;
  Response response = strip_body_for_head(std::move(*answer), head, shared_bytes);
  if (head) shared_body.reset();
  respond({std::move(response), handler, std::move(shared_body)});
}

std::optional<Response> check_websocket_upgrade(const Request& request,
                                                const AccessPolicy& access) {
  if (auto refused = missing_host(request)) return refused;
  const RoutedTarget routed = routed_target(request);
  if (!routed.absolute_valid) return bad_absolute_form(request);
  const std::string_view host = routed.host;
  if (!host_allowed(host, access)) return misdirected(host, request);
  const auto origin = request.find(field::origin);
  std::optional<std::string_view> origin_value;
  if (origin != request.end()) {
    origin_value = std::string_view(origin->value().data(), origin->value().size());
  }
  if (!origin_allowed(origin_value, host, access)) {
    return error(403, "forbidden",
                 "WebSocket connections from origin \"" + std::string(*origin_value) +
                     "\" are not allowed (see api.allowed_origins)",
                 request);
  }
  return std::nullopt;
}

}  // namespace vapor::http
