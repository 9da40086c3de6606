#pragma once

// A real trainer's point, as one line of JSON (DESIGN.md, "Job kinds"): what a command job writes
// to VAPOR_METRICS_FD and a push job posts. Pure: text in, a point or a located error out.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/job_events.hpp"
#include "support/result.hpp"

namespace vapor::runner {

/// A named scalar's name: `[a-z][a-z0-9_]{0,63}`.
[[nodiscard]] bool valid_scalar_name(std::string_view name);

using core::ReportedPoint;

/// Parses one line (without its newline). The error says which key is wrong and why, e.g.
/// `"step": expected an integer from 1 to 2^53 - 1, got -3`.
[[nodiscard]] Result<ReportedPoint> parse_metric_line(std::string_view line);

/// How a batch of points is written: a JSON array of point objects, or NDJSON
/// (`application/x-ndjson`: one point object per line; blank lines are skipped).
enum class BatchFormat { json_array, ndjson };

/// A push job's batch: all of it or nothing. Points follow parse_metric_line's rules, their
/// steps strictly increase, and there are 1 to `max_points` of them. The error names the point
/// (0-based index; for NDJSON also its line), e.g.
/// `point 3 (line 4): "loss" is missing (a number, null, "NaN" or "Infinity")`.
[[nodiscard]] Result<std::vector<ReportedPoint>> parse_point_batch(std::string_view body,
                                                                   BatchFormat format,
                                                                   std::size_t max_points);

/// An RFC 3339 time (`2026-12-06T18:40:00Z`, `...00.250+01:00`), to the millisecond, in the
/// years 1970 to 2200.
[[nodiscard]] std::optional<core::WallTime> parse_rfc3339(std::string_view text);

}  // namespace vapor::runner
