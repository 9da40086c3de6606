#pragma once

// How the store's values become SQLite's and back: times as Unix milliseconds, steps as int64.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "core/job_events.hpp"
#include "support/result.hpp"

namespace vapor::store::detail {

inline std::int64_t to_millis(core::WallTime time) {
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

inline core::WallTime from_millis(std::int64_t millis) {
  return core::WallTime(std::chrono::milliseconds(millis));
}

inline std::int64_t to_sql_int(std::uint64_t value) {
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(value, max));
}

inline std::uint64_t from_sql_uint(std::int64_t value) {
  return value < 0 ? 0 : static_cast<std::uint64_t>(value);
}

/// Appends what was being done to an error: "<file>: <sqlite message> (while ...)".
inline Error while_doing(const Error& error, std::string_view what) {
  return fail(error.message + " (while " + std::string(what) + ")");
}

}  // namespace vapor::store::detail
