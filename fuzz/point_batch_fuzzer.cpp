// A push job's batch of points (POST /api/v1/jobs/{id}/points), as a JSON array or NDJSON: never
// crash, a refusal names the point it is about (or says the body is not a batch at all), and an
// accepted batch keeps its limits (1 to max points, steps strictly increasing) and is the same
// batch when written in the other format. The first input byte picks the format.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "runner/metric_line.hpp"

namespace {

constexpr std::size_t max_points = 64;

/// The batch's points as the other format would carry them: NDJSON lines, or one JSON array.
/// Each point is re-read from the body by parse_metric_line's rules, so only the framing changes.
std::string reframed(std::string_view body, vapor::runner::BatchFormat from) {
  using vapor::runner::BatchFormat;
  if (from == BatchFormat::ndjson) {
    std::string array = "[";
    std::size_t at = 0;
    while (at <= body.size()) {
      const auto newline = body.find('\n', at);
      std::string_view line = body.substr(at, newline == std::string_view::npos
                                                  ? std::string_view::npos
                                                  : newline - at);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") != std::string_view::npos) {
        if (array.size() > 1) array += ',';
        array += line;
      }
      if (newline == std::string_view::npos) break;
      at = newline + 1;
    }
    return array + "]";
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vapor;
  if (size == 0) return 0;
  const auto format = (data[0] & 1) != 0 ? runner::BatchFormat::ndjson
                                         : runner::BatchFormat::json_array;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto batch = runner::parse_point_batch(body, format, max_points);
  if (!batch) {
    const std::string& why = batch.error().message;
    fuzz::check(why.starts_with("point ") || why.starts_with("not valid JSON") ||
                    why.starts_with("expected a JSON array") || why == "the batch holds no point",
                "a refusal that names no point: " + why);
    return 0;
  }
  fuzz::check(!batch->empty() && batch->size() <= max_points, "a batch outside 1..max points");
  for (std::size_t i = 0; i < batch->size(); ++i) {
    const core::ReportedPoint& point = (*batch)[i];
    fuzz::check(point.step >= 1, "a step below 1 was accepted");
    fuzz::check(i == 0 || point.step > (*batch)[i - 1].step, "steps that do not increase");
    fuzz::check(point.scalars.size() <= core::max_scalar_names, "more scalars than the limit");
  }
  if (format == runner::BatchFormat::ndjson) {
    // The same lines as one JSON array are the same batch.
    const std::string array = reframed(body, format);
    const auto again = runner::parse_point_batch(array, runner::BatchFormat::json_array,
                                                 max_points);
    fuzz::check(again.has_value(), "NDJSON accepted but the same points as an array refused: " +
                                       (again ? std::string() : again.error().message));
    fuzz::check(again->size() == batch->size(), "the array holds another number of points");
    for (std::size_t i = 0; i < batch->size(); ++i) {
      fuzz::check((*again)[i].step == (*batch)[i].step, "the array's steps differ");
    }
  }
  return 0;
}
