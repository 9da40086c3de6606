#pragma once

// The HTTP API as a free function from a request to a response: no sockets, so every endpoint is
// testable without a network. The Beast sessions call `route` and write its answer; most answers
// are ready at once, those that read history come back from the store thread.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "config/queue_file.hpp"
#include "core/job_events.hpp"
#include "core/job_spec.hpp"
#include "http/access.hpp"
#include "http/job_list.hpp"
#include "support/file_tail.hpp"
#include "support/result.hpp"

namespace vapor::runtime {
class Scheduler;
}
namespace vapor::store {
class JobHistory;
}

namespace vapor::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

/// Why a mutation was refused, so the router can pick the status code.
enum class ControlFailure { not_found, conflict, invalid, unavailable, forbidden, busy };

struct ControlError {
  ControlFailure kind = ControlFailure::invalid;
  std::string message;
  std::string code{};  ///< the error's `code` when not the kind's usual one
};

/// The changes the API may ask for. The app implements it, keeping store, scheduler, metrics and
/// the timer driver in step. Event-loop thread only.
class JobControl {
 public:
  JobControl() = default;
  JobControl(const JobControl&) = delete;
  JobControl& operator=(const JobControl&) = delete;
  virtual ~JobControl() = default;

  /// Adds a validated spec as a new queued job; returns its id (conflict: name taken) and, for
  /// a push job, the token that may push its points (shown once: only its hash is kept).
  virtual std::optional<ControlError> submit(core::JobSpec spec, core::JobId& id,
                                             std::string& push_token) = 0;
  virtual std::optional<ControlError> start(core::JobId id) = 0;  ///< conflict: state forbids it
  virtual std::optional<ControlError> stop(core::JobId id) = 0;   ///< conflict: state forbids it
  /// A push job's batch (parsed, its steps increasing): all of it is recorded or none (the
  /// error says why: `step_not_increasing`, `job_finished`, busy when the store is behind).
  /// `accepted` counts what was recorded: fewer than given only when a non-finite loss ended
  /// the job part-way.
  virtual std::optional<ControlError> push_points(core::JobId id,
                                                  const std::vector<core::ReportedPoint>& points,
                                                  std::size_t& accepted) = 0;
  /// A push job's own end: `complete`, or `failed` with a reason.
  virtual std::optional<ControlError> finish(core::JobId id, core::JobState state,
                                             std::string reason) = 0;
  /// Whether `token` is job `id`'s push token (compared in constant time).
  [[nodiscard]] virtual bool push_token_matches(core::JobId id, std::string_view token) const = 0;
  /// The id of the job `ref` (an id or a name) names when it is a finished job no longer held
  /// in memory, to make room under scheduler.max_jobs: its history stays in the database (the
  /// history endpoints still read it), its name taken. Nothing for any other `ref`.
  [[nodiscard]] virtual std::optional<core::JobId> retired(std::string_view ref) const = 0;
};

// AccessPolicy (token, served Host names, allowed Origins) lives in http/access.hpp, with the
// Beast-free checks that apply it.

/// GET /metrics's text: `head`, rendered for this scrape, then `shared` (may be null), a text
/// other scrapes hold too (vapord's per-job series: megabytes, not copied per response).
struct MetricsText {
  std::string head;
  std::shared_ptr<const std::string> shared;
};

/// Everything `route` reads or calls. References must outlive the call.
struct RouterContext {
  const runtime::Scheduler& scheduler;
  store::JobHistory& history;  ///< points and transitions, committed or buffered
  JobControl& control;
  const AccessPolicy& access;
  config::SpecDefaults spec_defaults;
  std::function<MetricsText()> render_metrics;  ///< Prometheus text for GET /metrics
  std::function<bool()> ready;                  ///< store open and queue loaded
  JobListCache job_list{};                      ///< GET /api/v1/jobs and the feed's hello
  std::size_t max_batch_points = 10'000;        ///< api.max_batch_points: points per push batch
  /// GET /api/v1/jobs/{id}/log: reads a command job's log off the event loop (from
  /// `after_byte`, or its last `max_bytes`) and answers on the loop. Unset: no logs.
  std::function<void(core::JobId id, std::optional<std::uint64_t> after_byte,
                     std::size_t max_bytes, std::function<void(Result<FileTail>)> done)>
      read_log{};
};

/// A response and the handler name that produced it (the `handler` label of
/// vapor_http_requests_total: "metrics", "jobs", "job", "points", "events", "submit", "start",
/// "stop", "log", "push", "finish", "healthz", "readyz", "index" (the live page), "asset" (its
/// files), "ws", "not_found").
struct Routed {
  Response response;
  std::string_view handler;
  /// Sent after `response.body()` and counted in its Content-Length: a body part shared with
  /// other responses (GET /metrics's per-job series). Null for every other answer, and for HEAD.
  std::shared_ptr<const std::string> shared_body{};
};

/// Where `route` sends its answer: called exactly once, on the event-loop thread.
using Respond = std::function<void(Routed)>;

/// Answers one request: through `respond` before returning, or, for the history endpoints
/// (points, events), later, when the store thread has read it. Never throws; errors are JSON
/// `{"error":{"code","message"}}` with the right status. Mutations need
/// `Authorization: Bearer <token>` (401 otherwise, compared in constant time): the API token, or
/// for a push job's points and finish also that job's push token; a Host that is not served
/// gets 421. `request` need not outlive the call.
void route(const Request& request, RouterContext& context, Respond respond);

/// For a WebSocket upgrade request: nothing when it may proceed, else the refusal to send
/// (421 for a Host not served, 403 for an Origin not allowed).
[[nodiscard]] std::optional<Response> check_websocket_upgrade(const Request& request,
                                                              const AccessPolicy& access);

/// A JSON error response: `{"error":{"code":code,"message":message}}`.
[[nodiscard]] Response error_response(unsigned status, std::string_view code,
                                      std::string_view message, unsigned version, bool keep_alive);

}  // namespace vapor::http
