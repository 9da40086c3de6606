#include "runner/metric_line.hpp"

#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace vapor::runner {
namespace {

namespace json = boost::json;

/// A value as the error shows it: JSON text, cut short.
std::string shown(const json::value& value) {
  std::string text = json::serialize(value);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

Error bad_key(std::string_view key, std::string_view expected, const json::value& value) {
  return fail("\"" + std::string(key) + "\": expected " + std::string(expected) + ", got " +
              shown(value));
}

std::optional<double> number(const json::value& value) {
  if (value.is_double()) return value.get_double();
  if (value.is_int64()) return static_cast<double>(value.get_int64());
  if (value.is_uint64()) return static_cast<double>(value.get_uint64());
  return std::nullopt;
}

/// The largest step or epoch taken: 2^53 - 1, what a double (the page's JavaScript, JSON
/// readers) still holds exactly, far below what SQLite's INTEGER holds.
constexpr std::uint64_t max_integer = 9'007'199'254'740'991;

std::optional<std::uint64_t> positive_integer(const json::value& value) {
  if (value.is_int64() && value.get_int64() >= 1 &&
      static_cast<std::uint64_t>(value.get_int64()) <= max_integer) {
    return static_cast<std::uint64_t>(value.get_int64());
  }
  if (value.is_uint64() && value.get_uint64() >= 1 && value.get_uint64() <= max_integer) {
    return value.get_uint64();
  }
  // 1e3 or 12.0: an integer written as a float (numpy often does).
  if (value.is_double()) {
    const double d = value.get_double();
    if (d >= 1 && d <= static_cast<double>(max_integer) && std::floor(d) == d) {
      return static_cast<std::uint64_t>(d);
    }
  }
  return std::nullopt;
}

/// A number, or null / "NaN" / "Infinity" / "-Infinity" for the non-finite values JSON lacks.
std::optional<double> number_or_nonfinite(const json::value& value) {
  if (auto finite = number(value)) return finite;
  if (value.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (value.is_string()) {
    const auto& text = value.get_string();
    if (text == "NaN" || text == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (text == "Infinity" || text == "inf") return std::numeric_limits<double>::infinity();
    if (text == "-Infinity" || text == "-inf") return -std::numeric_limits<double>::infinity();
  }
  return std::nullopt;
}

bool digits(std::string_view text, std::size_t at, std::size_t count, int& out) {
  if (at + count > text.size()) return false;
  const char* first = text.data() + at;
  const auto [end, error] = std::from_chars(first, first + count, out);
  return error == std::errc() && end == first + count;
}

}  // namespace

bool valid_scalar_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() < 'a' || name.front() > 'z') return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::optional<core::WallTime> parse_rfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20 || !digits(text, 0, 4, year) || text[4] != '-' ||
      !digits(text, 5, 2, month) || text[7] != '-' || !digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !digits(text, 11, 2, hour) ||
      text[13] != ':' || !digits(text, 14, 2, minute) || text[16] != ':' ||
      !digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::int64_t millis = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    const std::size_t first = at;
    std::int64_t scale = 100;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      millis += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == first) return std::nullopt;
  }
  std::chrono::minutes offset{0};
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    int offset_hours = 0, offset_minutes = 0;
    if (!digits(text, at + 1, 2, offset_hours) || at + 3 >= text.size() || text[at + 3] != ':' ||
        !digits(text, at + 4, 2, offset_minutes) || offset_hours > 23 || offset_minutes > 59) {
      return std::nullopt;
    }
    offset = std::chrono::hours(offset_hours) + std::chrono::minutes(offset_minutes);
    if (text[at] == '-') offset = -offset;
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != text.size()) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(year),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  // Years the clock can hold in nanoseconds (to 2262) and a trainer can mean.
  if (!date.ok() || year < 1970 || year > 2200 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  const auto time = std::chrono::sys_days(date) + std::chrono::hours(hour) +
                    std::chrono::minutes(minute) + std::chrono::seconds(second) +
                    std::chrono::milliseconds(millis) - offset;
  return core::WallTime(std::chrono::duration_cast<core::WallTime::duration>(
      time.time_since_epoch()));
}

namespace {

/// One point from its parsed JSON (the rules of parse_metric_line).
Result<ReportedPoint> parse_point(const json::value& parsed) {
  if (!parsed.is_object()) return fail("expected a JSON object, got " + shown(parsed));
  const json::object& object = parsed.get_object();

  ReportedPoint point;
  bool has_step = false;
  bool has_loss = false;
  for (const auto& [key_view, value] : object) {
    const std::string_view key(key_view.data(), key_view.size());
    if (key == "step") {
      const auto step = positive_integer(value);
      if (!step) return bad_key(key, "an integer from 1 to 2^53 - 1", value);
      point.step = *step;
      has_step = true;
    } else if (key == "loss") {
      const auto loss = number_or_nonfinite(value);
      if (!loss) return bad_key(key, "a number, null, \"NaN\" or \"Infinity\"", value);
      point.loss = *loss;
      has_loss = true;
    } else if (key == "epoch") {
      const auto epoch = positive_integer(value);
      if (!epoch) return bad_key(key, "an integer from 1 to 2^53 - 1", value);
      point.epoch = *epoch;
    } else if (key == "accuracy") {
      const auto accuracy = number_or_nonfinite(value);
      if (!accuracy) return bad_key(key, "a number", value);
      point.accuracy = *accuracy;
    } else if (key == "progress") {
      const auto progress = number(value);
      if (!progress || *progress < 0.0 || *progress > 1.0) {
        return bad_key(key, "a number from 0 to 1", value);
      }
      point.progress = *progress;
    } else if (key == "ts") {
      const auto ts = value.is_string()
                          ? parse_rfc3339(std::string_view(value.get_string().data(),
                                                           value.get_string().size()))
                          : std::nullopt;
      if (!ts) return bad_key(key, "an RFC 3339 time such as \"2026-12-06T18:40:00Z\"", value);
      point.ts = *ts;
    } else {
      if (!valid_scalar_name(key)) {
        return fail("\"" + std::string(key.substr(0, 80)) +
                    "\": a named scalar's name is [a-z][a-z0-9_]{0,63}");
      }
      const auto scalar = number_or_nonfinite(value);
      if (!scalar) return bad_key(key, "a number (a named scalar)", value);
      if (point.scalars.size() == core::max_scalar_names) {
        return fail("more than " + std::to_string(core::max_scalar_names) +
                    " named scalars in one point");
      }
      point.scalars.push_back({std::string(key), *scalar});
    }
  }
  if (!has_step) return fail("\"step\" is missing (an integer >= 1)");
  if (!has_loss) return fail("\"loss\" is missing (a number, null, \"NaN\" or \"Infinity\")");
  return point;
}

/// Adds a batch point, checking the batch's own limits; the error names the point.
Result<void> add_to_batch(std::vector<ReportedPoint>& batch, Result<ReportedPoint> point,
                          const std::string& where, std::size_t max_points) {
  if (!point) return fail(where + ": " + point.error().message);
  if (batch.size() == max_points) {
    return fail(where + ": more than " + std::to_string(max_points) +
                " points in one batch (api.max_batch_points); send them in several");
  }
  if (!batch.empty() && point->step <= batch.back().step) {
    return fail(where + ": step " + std::to_string(point->step) + " does not come after step " +
                std::to_string(batch.back().step) + " of the point before it (steps must "
                "increase)");
  }
  batch.push_back(std::move(*point));
  return {};
}

}  // namespace

Result<ReportedPoint> parse_metric_line(std::string_view line) {
  boost::system::error_code failure;
  const json::value parsed = json::parse(line, failure);
  if (failure) return fail("not valid JSON (" + failure.message() + ")");
  return parse_point(parsed);
}

Result<std::vector<ReportedPoint>> parse_point_batch(std::string_view body, BatchFormat format,
                                                     std::size_t max_points) {
  std::vector<ReportedPoint> batch;
  if (format == BatchFormat::ndjson) {
    std::size_t line_number = 0;
    while (!body.empty()) {
      const auto newline = body.find('\n');
      std::string_view line = body.substr(0, newline);
      body.remove_prefix(newline == std::string_view::npos ? body.size() : newline + 1);
      ++line_number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank
      const std::string where =
          "point " + std::to_string(batch.size()) + " (line " + std::to_string(line_number) + ")";
      if (auto added = add_to_batch(batch, parse_metric_line(line), where, max_points); !added) {
        return added.error();
      }
    }
  } else {
    boost::system::error_code failure;
    const json::value parsed = json::parse(body, failure);
    if (failure) return fail("not valid JSON (" + failure.message() + ")");
    if (!parsed.is_array()) {
      return fail("expected a JSON array of points, got " + shown(parsed));
    }
    for (const json::value& item : parsed.get_array()) {
      const std::string where = "point " + std::to_string(batch.size());
      if (auto added = add_to_batch(batch, parse_point(item), where, max_points); !added) {
        return added.error();
      }
    }
  }
  if (batch.empty()) return fail("the batch holds no point");
  return batch;
}

}  // namespace vapor::runner
