#pragma once

// How a point's named scalars are kept in the `points.scalars` column: one JSON object per point
// (`{"val_loss":0.31,"lr":0.001}`), NULL when the point has none (every simulated point). JSON so
// that `sqlite3` and its json_extract() read it as any user would expect; a non-finite value is
// spelled as the metric-line format spells it ("NaN", "Infinity", "-Infinity"), so nothing is lost.

#include <string>
#include <string_view>

#include "core/job_events.hpp"
#include "support/result.hpp"

namespace vapor::store::detail {

/// The column text of `scalars` (not empty: the caller stores NULL for none). Numbers are
/// written shortest-exact, so they read back to the same double.
[[nodiscard]] std::string encode_scalars(const core::Scalars& scalars);

/// The scalars of a column value written by `encode_scalars`, each number exactly the double
/// that was written. The error shows the value (the file may have been edited by hand).
[[nodiscard]] Result<core::Scalars> decode_scalars(std::string_view text);

}  // namespace vapor::store::detail
