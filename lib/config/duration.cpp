#include <cstdint>
#include <limits>

#include "config/daemon_config.hpp"
#include "config/detail/scalar_text.hpp"

namespace vapor::config {
namespace {

struct DurationUnit {
  std::string_view suffix;
  std::int64_t milliseconds;
};

// "ms" before "m" and "s": the longest suffix is tried first.
constexpr DurationUnit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {"d", 24 * 60 * 60 * 1000}};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds(0);  // zero needs no unit
  for (const DurationUnit& unit : duration_units) {
    if (!text.ends_with(unit.suffix)) continue;
    const std::string_view digits = text.substr(0, text.size() - unit.suffix.size());
    if (digits.empty() || digits.front() == '+') return std::nullopt;
    const std::optional<std::uint64_t> count = detail::parse_unsigned_integer(digits);
    const auto max_count =
        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / unit.milliseconds);
    if (!count || *count > max_count) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(*count) * unit.milliseconds);
  }
  return std::nullopt;
}

}  // namespace vapor::config
