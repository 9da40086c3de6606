#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// Internal to the config module: strict scalar syntax and the text used in error messages.
/// Pure functions; any thread.
namespace vapor::config::detail {

/// Decimal digits with an optional leading `+` (`12`, `+3`); no sign, hex, `_` or exponent.
[[nodiscard]] std::optional<std::uint64_t> parse_unsigned_integer(std::string_view text);

/// Decimal digits with an optional sign (`-12`); the full int64 range.
[[nodiscard]] std::optional<std::int64_t> parse_signed_integer(std::string_view text);

/// A finite decimal number: `3`, `-0.5`, `.5`, `1e-3`, `2.5E0` (what YAML and JSON writers
/// produce). No `.inf`, `.nan`, hex, or values that overflow or underflow a double.
[[nodiscard]] std::optional<double> parse_real_number(std::string_view text);

/// The shortest text that reads back as exactly `value` (`0.05`, `1e-07`).
[[nodiscard]] std::string format_real_number(double value);

/// `text` in double quotes for an error message: quotes, backslashes and control characters
/// escaped, long text cut after 40 characters with `...`.
[[nodiscard]] std::string quote_for_message(std::string_view text);

/// The largest unit that says `duration` exactly: `150ms`, `2s`, `5m`, `1h`; parse_duration reads
/// it back.
[[nodiscard]] std::string format_duration(std::chrono::milliseconds duration);

}  // namespace vapor::config::detail
