#include "config/detail/scalar_text.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <system_error>

namespace vapor::config::detail {
namespace {

constexpr std::size_t max_quoted_characters = 40;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!is_digit(c)) return false;
  }
  return true;
}

/// Skips digits from `position`; returns how many there were.
std::size_t skip_digits(std::string_view text, std::size_t& position) {
  const std::size_t start = position;
  while (position < text.size() && is_digit(text[position])) ++position;
  return position - start;
}

/// `[+-]?(digits(.digits?)?|.digits)([eE][+-]?digits)?`
bool is_decimal_number(std::string_view text) {
  std::size_t position = 0;
  if (position < text.size() && (text[position] == '+' || text[position] == '-')) ++position;
  std::size_t mantissa_digits = skip_digits(text, position);
  if (position < text.size() && text[position] == '.') {
    ++position;
    mantissa_digits += skip_digits(text, position);
  }
  if (mantissa_digits == 0) return false;
  if (position < text.size() && (text[position] == 'e' || text[position] == 'E')) {
    ++position;
    if (position < text.size() && (text[position] == '+' || text[position] == '-')) ++position;
    if (skip_digits(text, position) == 0) return false;
  }
  return position == text.size();
}

/// Length of the UTF-8 sequence that starts with `lead` (the text was validated earlier).
std::size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

void append_escaped(std::string& out, char c) {
  const auto byte = static_cast<unsigned char>(c);
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\r':
      out += "\\r";
      return;
    default:
      break;
  }
  if (byte < 0x20 || byte == 0x7F) {
    constexpr std::string_view hex = "0123456789abcdef";
    out += "\\x";
    out += hex[byte >> 4];
    out += hex[byte & 0x0F];
    return;
  }
  out += c;
}

}  // namespace

std::optional<std::uint64_t> parse_unsigned_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (!all_digits(text)) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_signed_integer(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const std::string_view digits = !text.empty() && text.front() == '-' ? text.substr(1) : text;
  if (!all_digits(digits)) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_real_number(std::string_view text) {
  if (!is_decimal_number(text)) return std::nullopt;
  // from_chars takes no leading '+'.
  if (text.front() == '+') text.remove_prefix(1);
  double value = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::string format_real_number(double value) {
  std::array<char, 64> buffer{};
  const auto [end, error] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (error != std::errc{}) return "?";
  return std::string(buffer.data(), end);
}

std::string quote_for_message(std::string_view text) {
  std::string out = "\"";
  std::size_t characters = 0;
  std::size_t position = 0;
  while (position < text.size()) {
    if (characters == max_quoted_characters) {
      out += "...";
      break;
    }
    const std::size_t length = utf8_sequence_length(static_cast<unsigned char>(text[position]));
    if (length == 1) {
      append_escaped(out, text[position]);
    } else {
      out += text.substr(position, length);
    }
    position += length;
    ++characters;
  }
  out += '"';
  return out;
}

std::string format_duration(std::chrono::milliseconds duration) {
  using std::chrono::hours, std::chrono::minutes, std::chrono::seconds;
  const std::int64_t count = duration.count();
  if (count != 0) {
    if (count % std::chrono::milliseconds(hours(1)).count() == 0) {
      return std::to_string(count / std::chrono::milliseconds(hours(1)).count()) + "h";
    }
    if (count % std::chrono::milliseconds(minutes(1)).count() == 0) {
      return std::to_string(count / std::chrono::milliseconds(minutes(1)).count()) + "m";
    }
    if (count % std::chrono::milliseconds(seconds(1)).count() == 0) {
      return std::to_string(count / std::chrono::milliseconds(seconds(1)).count()) + "s";
    }
  }
  return std::to_string(count) + "ms";
}

}  // namespace vapor::config::detail
