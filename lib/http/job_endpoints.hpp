#pragma once

// The /api/v1/jobs endpoints: list, one job, its points and events, submit, start and stop, and a
// push job's points and finish.
// Each is a function from a parsed target and request to a response, called by the router's
// table once the method, Host and token have been checked; the two that read history answer
// later, when the store thread has read it. Event-loop thread only.

#include <functional>
#include <string_view>

#include "http/request_target.hpp"
#include "http/router.hpp"

namespace vapor::runtime {
struct Job;
}

namespace vapor::http {

/// The job an `{id}` path segment names: by numeric id, else by name (a name may be all digits).
[[nodiscard]] const runtime::Job* find_job(const runtime::Scheduler& scheduler,
                                           std::string_view ref);

/// How a deferred endpoint answers: exactly once, on the event-loop thread.
using Deliver = std::function<void(Response)>;
using DeferredEndpoint = void (*)(const Target&, const Request&, RouterContext&, Deliver);

/// GET /api/v1/jobs
[[nodiscard]] Response list_jobs(const Target& target, const Request& request,
                                 RouterContext& context);
/// GET /api/v1/jobs/{id}
[[nodiscard]] Response get_job(const Target& target, const Request& request,
                               RouterContext& context);
/// GET /api/v1/jobs/{id}/metrics?after_step=&limit=&max_points=
void get_points(const Target& target, const Request& request, RouterContext& context,
                Deliver deliver);
/// GET /api/v1/jobs/{id}/events
void get_events(const Target& target, const Request& request, RouterContext& context,
                Deliver deliver);
/// GET /api/v1/jobs/{id}/log?tail_bytes=&after_byte= (a command job's stdout and stderr)
void get_log(const Target& target, const Request& request, RouterContext& context,
             Deliver deliver);
/// POST /api/v1/jobs
[[nodiscard]] Response submit_job(const Target& target, const Request& request,
                                  RouterContext& context);
/// POST /api/v1/jobs/{id}/start
[[nodiscard]] Response start_job(const Target& target, const Request& request,
                                 RouterContext& context);
/// POST /api/v1/jobs/{id}/stop
[[nodiscard]] Response stop_job(const Target& target, const Request& request,
                                RouterContext& context);
/// POST /api/v1/jobs/{id}/points: a push job's batch, a JSON array or NDJSON.
[[nodiscard]] Response push_points(const Target& target, const Request& request,
                                   RouterContext& context);
/// POST /api/v1/jobs/{id}/finish: `{"state":"complete"}` or `{"state":"failed","reason":..}`.
[[nodiscard]] Response finish_job(const Target& target, const Request& request,
                                  RouterContext& context);

}  // namespace vapor::http
