#pragma once

// JSON shapes of the API and the WebSocket feed (Boost.JSON). Non-finite numbers are written as
// null with a flag (`"loss":null,"loss_nonfinite":"nan"`), never as invalid JSON.

#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/job_events.hpp"

namespace vapor::runtime {
struct Job;
}
namespace vapor::store {
struct StoredPoint;
struct StoredTransition;
}

namespace vapor::http {

/// RFC 3339 UTC with milliseconds: "2026-11-29T04:26:22.381Z".
[[nodiscard]] std::string rfc3339(core::WallTime time);

/// JobSummary: id, name, model, state, reason, epoch, epochs, step, steps, progress, loss,
/// accuracy, eta_seconds (or null), created_at, started_at, finished_at; a real job's latest
/// "scalars".
[[nodiscard]] boost::json::object job_summary(const runtime::Job& job);

/// JobSummary plus "spec" (the job spec as submitted, every field explicit).
[[nodiscard]] boost::json::object job_detail(const runtime::Job& job);

/// One point: step, epoch, loss, accuracy, ts, and "scalars" when it has named scalars.
[[nodiscard]] boost::json::object point_json(const store::StoredPoint& point);

/// One transition: from, to, reason, ts, and the step it followed (when recorded).
[[nodiscard]] boost::json::object transition_json(const store::StoredTransition& transition);

/// WebSocket feed messages (without "seq", which each connection adds).
[[nodiscard]] boost::json::object point_message(const core::StepRecorded& event);
[[nodiscard]] boost::json::object state_message(const core::JobStateChanged& event);

/// Sets `object["scalars"]` to `{"name": value, ...}` when there are any, non-finite values as
/// null named in `object["scalars_nonfinite"]` (`{"lr":"nan"}`).
void put_scalars(boost::json::object& object, const core::Scalars& scalars);

/// Sets `object[key]` to `value`, or to null plus `object[key + "_nonfinite"]` = "nan" | "inf" |
/// "-inf" when it is not finite.
void put_number(boost::json::object& object, std::string_view key, double value);

}  // namespace vapor::http
