// The metric-line parser (a real trainer's points): never crash, every refusal says why, and an
// accepted point keeps the format's limits (step >= 1, progress in 0..1, named scalars valid and
// at most 32) and reads back the same when written out again.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "fuzz_check.hpp"
#include "runner/metric_line.hpp"

namespace {

boost::json::value number_json(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

/// Equal, or within Boost.JSON 1.81's parsing precision (it does not round long decimals
/// correctly, so a number written out shortest can read back one unit in the last place off).
bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (a == b) return true;
  return std::isfinite(a) && std::isfinite(b) &&
         std::fabs(a - b) <= 1e-14 * std::max(std::fabs(a), std::fabs(b));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vapor;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = runner::parse_metric_line(text);
  if (!parsed) {
    fuzz::check(!parsed.error().message.empty(), "a refused line has no reason");
    return 0;
  }
  const runner::ReportedPoint& point = *parsed;
  fuzz::check(point.step >= 1, "a step below 1 was accepted");
  fuzz::check(!point.progress || (*point.progress >= 0.0 && *point.progress <= 1.0),
              "a progress outside 0..1 was accepted");
  fuzz::check(point.scalars.size() <= core::max_scalar_names, "more scalars than the limit");

  boost::json::object line{{"step", point.step}, {"loss", number_json(point.loss)}};
  if (point.epoch) line["epoch"] = *point.epoch;
  if (point.accuracy) line["accuracy"] = number_json(*point.accuracy);
  if (point.progress) line["progress"] = *point.progress;
  for (const auto& [name, value] : point.scalars) {
    fuzz::check(runner::valid_scalar_name(name), "an invalid scalar name was accepted: " + name);
    line[name] = number_json(value);
  }
  const std::string written = boost::json::serialize(line);
  const auto again = runner::parse_metric_line(written);
  fuzz::check(again.has_value(), "a point does not parse back: " + written);
  fuzz::check(again->step == point.step && same(again->loss, point.loss) &&
                  again->scalars.size() == point.scalars.size(),
              "a point parses back differently: " + written);
  return 0;
}
