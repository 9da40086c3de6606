#include "http/job_endpoints.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>

#include "config/config_error.hpp"
#include "http/json_codec.hpp"
#include "http/responses.hpp"
#include "runner/metric_line.hpp"
#include "runtime/scheduler.hpp"
#include "store/job_history.hpp"

namespace vapor::http {
namespace {

using boost::beast::http::field;

constexpr std::uint64_t default_limit = 200;
constexpr std::uint64_t max_limit = 10'000;
constexpr std::uint64_t max_max_points = 10'000;
constexpr std::uint64_t default_log_bytes = 64 * 1024;
constexpr std::uint64_t max_log_bytes = 8 * 1024 * 1024;

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

/// Whether a Content-Type names `media` (lowercase), whatever its case and parameters.
bool has_media_type(std::string_view content_type, std::string_view media) {
  const std::string_view given = trim(content_type.substr(0, content_type.find(';')));
  return given.size() == media.size() &&
         std::equal(given.begin(), given.end(), media.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
         });
}

constexpr std::string_view ndjson_type = "application/x-ndjson";

/// A failed push job names what it reported; the reason becomes a label value, so it keeps to
/// the reasons' own alphabet.
bool valid_reason(std::string_view reason) {
  if (reason.empty() || reason.size() > 64 || reason.front() < 'a' || reason.front() > 'z') {
    return false;
  }
  return std::all_of(reason.begin(), reason.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

const runtime::Job* find_job(const runtime::Scheduler& scheduler, std::string_view ref) {
  if (const auto id = parse_unsigned(ref);
      id && *id <= static_cast<std::uint64_t>(std::numeric_limits<core::JobId>::max())) {
    if (const runtime::Job* job = scheduler.find(static_cast<core::JobId>(*id))) return job;
  }
  return scheduler.find(ref);
}

namespace {

Response job_not_found(std::string_view ref, const Request& request,
                       const RouterContext& context) {
  if (context.control.retired(ref)) {
    return error(404, "not_found",
                 "job \"" + std::string(ref) +
                     "\" has finished and is no longer held in memory (scheduler.max_jobs); its "
                     "points and events are still served from the database",
                 request);
  }
  return error(404, "not_found", "no job with id or name \"" + std::string(ref) + "\"", request);
}

/// A push job's points or finish for a job that left memory: it had finished, as DESIGN's 409.
std::optional<Response> retired_push_job(std::string_view ref, const Request& request,
                                         const RouterContext& context) {
  if (!context.control.retired(ref)) return std::nullopt;
  return error(409, "job_finished",
               "job \"" + std::string(ref) +
                   "\" has finished (and is no longer held in memory); it takes no more points",
               request);
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

Response invalid_spec(std::vector<config::ConfigError> errors, const Request& request) {
  boost::json::array details;
  for (const auto& located : errors) details.emplace_back(located.to_string());
  const std::string message =
      errors.size() == 1
          ? errors.front().to_string()
          : std::to_string(errors.size()) + " errors in the job spec, the first: " +
                errors.front().to_string();
  return error_with_details(400, "invalid_spec", message, std::move(details), request);
}

/// The parts of a request an answer given later is built from (version, keep-alive); the
/// request itself is gone by then.
Request head_of(const Request& request) {
  Request head;
  head.version(request.version());
  head.keep_alive(request.keep_alive());
  return head;
}

Response points_response(core::JobId id, const std::vector<store::StoredPoint>& loaded,
                         boost::json::value next_after_step, const Request& head) {
  boost::json::array points;
  points.reserve(loaded.size());
  for (const auto& point : loaded) points.push_back(point_json(point));
  return json_response(200,
                       boost::json::object{{"job_id", id},
                                           {"points", std::move(points)},
                                           {"next_after_step", std::move(next_after_step)}},
                       head);
}

/// Start or stop: the change through JobControl, then the job's summary as it is now.
template <class Change>
Response change_job(const Target& target, const Request& request, RouterContext& context,
                    Change change) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) return job_not_found(target.job_ref, request, context);
  const core::JobId id = job->id;
  if (const auto refused = change(context.control, id)) return control_error(*refused, request);
  job = context.scheduler.find(id);
  if (job == nullptr) return job_not_found(target.job_ref, request, context);
  return json_response(200, job_summary(*job), request);
}

}  // namespace

Response list_jobs(const Target&, const Request& request, RouterContext& context) {
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
  if (job == nullptr) return job_not_found(target.job_ref, request, context);
  return json_response(200, job_detail(*job), request);
}

/// The job whose history is asked for: one held in memory, or one retired to the database
/// alone (its last step unknown here: the whole stored run is in range).
struct HistoryOf {
  core::JobId id = 0;
  std::uint64_t last_step = 0;
};

std::optional<HistoryOf> history_of(std::string_view ref, const RouterContext& context) {
  if (const runtime::Job* job = find_job(context.scheduler, ref)) {
    return HistoryOf{job->id, job->step};
  }
  if (const auto id = context.control.retired(ref)) {
    return HistoryOf{*id, std::numeric_limits<std::uint64_t>::max()};
  }
  return std::nullopt;
}

void get_points(const Target& target, const Request& request, RouterContext& context,
                Deliver deliver) {
  const auto job = history_of(target.job_ref, context);
  if (!job) return deliver(job_not_found(target.job_ref, request, context));

  QueryReader query(target.query);
  const auto after_step =
      query.integer("after_step", 0, std::numeric_limits<std::uint64_t>::max()).value_or(0);
  const auto limit = query.integer("limit", 1, max_limit).value_or(default_limit);
  const auto max_points = query.integer("max_points", 2, max_max_points);
  if (query.problem()) return deliver(error(400, "invalid_parameter", *query.problem(), request));

  const core::JobId id = job->id;
  if (max_points) {
    // The whole range after after_step, up to the job's latest step, in at most max_points
    // (`limit` pages plain reads only: a chart wants the whole run, however long).
    context.history.load_points_downsampled(
        id, after_step, job->last_step, static_cast<std::size_t>(*max_points),
        [head = head_of(request), id, deliver](Result<std::vector<store::StoredPoint>> loaded) {
          if (!loaded) return deliver(error(500, "internal_error", loaded.error().message, head));
          deliver(points_response(id, *loaded, nullptr, head));
        });
    return;
  }
  // One more than asked tells whether another page follows.
  context.history.load_points(
      id, after_step, static_cast<std::size_t>(limit) + 1,
      [head = head_of(request), id, limit,
       deliver](Result<std::vector<store::StoredPoint>> loaded) {
        if (!loaded) return deliver(error(500, "internal_error", loaded.error().message, head));
        boost::json::value next_after_step = nullptr;
        if (loaded->size() > limit) {
          loaded->resize(static_cast<std::size_t>(limit));
          next_after_step = loaded->back().step;
        }
        deliver(points_response(id, *loaded, std::move(next_after_step), head));
      });
}

void get_events(const Target& target, const Request& request, RouterContext& context,
                Deliver deliver) {
  const auto job = history_of(target.job_ref, context);
  if (!job) return deliver(job_not_found(target.job_ref, request, context));
  const core::JobId id = job->id;
  context.history.load_transitions(
      id, [head = head_of(request), id, deliver](Result<std::vector<store::StoredTransition>> loaded) {
        if (!loaded) return deliver(error(500, "internal_error", loaded.error().message, head));
        boost::json::array events;
        for (const auto& transition : *loaded) events.push_back(transition_json(transition));
        deliver(json_response(200,
                              boost::json::object{{"job_id", id}, {"events", std::move(events)}},
                              head));
      });
}

void get_log(const Target& target, const Request& request, RouterContext& context,
             Deliver deliver) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) return deliver(job_not_found(target.job_ref, request, context));
  if (job->spec.kind != core::JobKind::command || !context.read_log) {
    return deliver(error(404, "no_log",
                         "job \"" + job->spec.name +
                             "\" has no log: only command jobs (kind: command) run a process",
                         request));
  }
  QueryReader query(target.query);
  const auto tail_bytes = query.integer("tail_bytes", 1, max_log_bytes).value_or(default_log_bytes);
  const auto after_byte =
      query.integer("after_byte", 0, std::numeric_limits<std::uint64_t>::max());
  if (query.problem()) return deliver(error(400, "invalid_parameter", *query.problem(), request));
  context.read_log(
      job->id, after_byte, static_cast<std::size_t>(tail_bytes),
      [head = head_of(request), name = job->spec.name, deliver](Result<FileTail> tail) {
        if (!tail) {
          return deliver(error(404, "no_log",
                               "job \"" + name + "\" has no log yet (its process has not "
                               "started)",
                               head));
        }
        Response response = make_response(200, "text/plain; charset=utf-8",
                                          std::move(tail->text), head.version(),
                                          head.keep_alive());
        response.set(field::cache_control, "no-store");
        // Where to continue from: ?after_byte=<this> returns only what was written since.
        response.set("X-Log-Size", std::to_string(tail->size));
        deliver(std::move(response));
      });
}

Response submit_job(const Target&, const Request& request, RouterContext& context) {
  const std::string_view content_type = field_value(request, field::content_type);
  if (!has_media_type(content_type, json_type)) {
    return error(415, "unsupported_media_type",
                 "a job spec is sent as JSON with 'Content-Type: application/json'" +
                     (content_type.empty() ? std::string(" (none was given)")
                                           : ", not '" + std::string(content_type) + "'"),
                 request);
  }
  const std::string& body = request.body();
  if (auto syntax = json_syntax_error(body)) return invalid_spec({std::move(*syntax)}, request);
  auto parsed = config::parse_job_spec(body, "request body", context.spec_defaults);
  if (!parsed.ok()) return invalid_spec(std::move(parsed.errors), request);

  core::JobId id = 0;
  std::string push_token;
  if (auto refused = context.control.submit(std::move(parsed.value), id, push_token)) {
    return control_error(*refused, request);
  }
  const runtime::Job* job = context.scheduler.find(id);
  if (job == nullptr) {
    return error(500, "internal_error",
                 "job " + std::to_string(id) + " was submitted but the scheduler does not know it",
                 request);
  }
  boost::json::object detail = job_detail(*job);
  if (!push_token.empty()) detail["push_token"] = push_token;  // shown this once
  Response response = json_response(201, std::move(detail), request);
  response.set(field::location, std::string(jobs_path) + "/" + std::to_string(id));
  if (!push_token.empty()) response.set(field::cache_control, "no-store");
  return response;
}

Response push_points(const Target& target, const Request& request, RouterContext& context) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) {
    if (auto finished = retired_push_job(target.job_ref, request, context)) return *finished;
    return job_not_found(target.job_ref, request, context);
  }
  const std::string_view content_type = field_value(request, field::content_type);
  const bool ndjson = has_media_type(content_type, ndjson_type);
  if (!ndjson && !has_media_type(content_type, json_type)) {
    return error(415, "unsupported_media_type",
                 "points are sent as a JSON array ('Content-Type: application/json') or as "
                 "NDJSON ('Content-Type: application/x-ndjson')" +
                     (content_type.empty() ? std::string(" (none was given)")
                                           : ", not '" + std::string(content_type) + "'"),
                 request);
  }
  auto batch = runner::parse_point_batch(
      request.body(), ndjson ? runner::BatchFormat::ndjson : runner::BatchFormat::json_array,
      context.max_batch_points);
  if (!batch) return error(400, "invalid_points", batch.error().message, request);
  const core::JobId id = job->id;
  std::size_t accepted = 0;
  if (auto refused = context.control.push_points(id, *batch, accepted)) {
    return control_error(*refused, request);
  }
  job = context.scheduler.find(id);
  if (job == nullptr) return job_not_found(target.job_ref, request, context);
  return json_response(200,
                       boost::json::object{{"accepted", accepted},
                                           {"rejected", batch->size() - accepted},
                                           {"job", job_summary(*job)}},
                       request);
}

Response finish_job(const Target& target, const Request& request, RouterContext& context) {
  const runtime::Job* job = find_job(context.scheduler, target.job_ref);
  if (job == nullptr) {
    if (auto finished = retired_push_job(target.job_ref, request, context)) return *finished;
    return job_not_found(target.job_ref, request, context);
  }
  if (!has_media_type(field_value(request, field::content_type), json_type)) {
    return error(415, "unsupported_media_type",
                 "the end of a push job is sent as JSON with 'Content-Type: application/json'",
                 request);
  }
  boost::system::error_code failure;
  const boost::json::value body = boost::json::parse(request.body(), failure);
  const boost::json::object* fields = failure ? nullptr : body.if_object();
  const boost::json::value* state = fields ? fields->if_contains("state") : nullptr;
  const boost::json::value* reason = fields ? fields->if_contains("reason") : nullptr;
  const bool complete = state != nullptr && state->is_string() && state->get_string() == "complete";
  const bool failed = state != nullptr && state->is_string() && state->get_string() == "failed";
  const bool known_keys = fields != nullptr && fields->size() == (reason ? 2u : 1u);
  if (!known_keys || (!complete && !failed)) {
    return error(400, "invalid_request",
                 R"(expected {"state":"complete"} or {"state":"failed","reason":"..."})",
                 request);
  }
  std::string why;
  if (reason != nullptr) {
    if (complete || !reason->is_string() ||
        !valid_reason(std::string_view(reason->get_string().data(), reason->get_string().size()))) {
      return error(400, "invalid_request",
                   "\"reason\" goes with \"failed\" and is [a-z][a-z0-9_]{0,63}, e.g. "
                   "\"out_of_memory\"",
                   request);
    }
    why = std::string(reason->get_string());
  }
  const core::JobId id = job->id;
  if (auto refused = context.control.finish(
          id, complete ? core::JobState::complete : core::JobState::failed, std::move(why))) {
    return control_error(*refused, request);
  }
  job = context.scheduler.find(id);
  if (job == nullptr) return job_not_found(target.job_ref, request, context);
  return json_response(200, job_summary(*job), request);
}

Response start_job(const Target& target, const Request& request, RouterContext& context) {
  return change_job(target, request, context,
                    [](JobControl& control, core::JobId id) { return control.start(id); });
}

Response stop_job(const Target& target, const Request& request, RouterContext& context) {
  return change_job(target, request, context,
                    [](JobControl& control, core::JobId id) { return control.stop(id); });
}

}  // namespace vapor::http
