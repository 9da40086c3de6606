#include "store/detail/scalars_column.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

namespace vapor::store::detail {

std::string encode_scalars(const core::Scalars& scalars) {
  std::string out = "{";
  for (const core::NamedScalar& scalar : scalars) {
    if (out.size() > 1) out += ',';
    out += '"';
    out += scalar.name;  // [a-z][a-z0-9_]*: nothing to escape
    out += "\":";
    if (std::isnan(scalar.value)) {
      out += "\"NaN\"";
    } else if (std::isinf(scalar.value)) {
      out += scalar.value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    } else {
      char digits[32];
      const auto written = std::to_chars(digits, digits + sizeof digits, scalar.value);
      out.append(digits, written.ptr);
    }
  }
  out += '}';
  return out;
}

Result<core::Scalars> decode_scalars(std::string_view text) {
  // The format is this file's own, so it is read back by hand: std::from_chars gives back
  // exactly the double to_chars wrote (Boost.JSON 1.81's parser may miss it by an ulp).
  const auto broken = [&] {
    return fail("the scalars column does not hold what vapord writes there: " +
                std::string(text.substr(0, 80)));
  };
  core::Scalars scalars;
  std::string_view rest = text;
  if (rest.size() < 2 || rest.front() != '{' || rest.back() != '}') return broken();
  rest = rest.substr(1, rest.size() - 2);
  while (!rest.empty()) {
    if (rest.front() != '"') return broken();
    const auto name_end = rest.find('"', 1);
    if (name_end == std::string_view::npos || name_end + 1 >= rest.size() ||
        rest[name_end + 1] != ':') {
      return broken();
    }
    core::NamedScalar scalar{std::string(rest.substr(1, name_end - 1)), 0.0};
    rest.remove_prefix(name_end + 2);
    const auto value_end = rest.find(',');
    const std::string_view value = rest.substr(0, value_end);
    if (value == "\"NaN\"") {
      scalar.value = std::numeric_limits<double>::quiet_NaN();
    } else if (value == "\"Infinity\"") {
      scalar.value = std::numeric_limits<double>::infinity();
    } else if (value == "\"-Infinity\"") {
      scalar.value = -std::numeric_limits<double>::infinity();
    } else {
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(),
                                                scalar.value);
      if (error != std::errc() || end != value.data() + value.size()) return broken();
    }
    scalars.push_back(std::move(scalar));
    rest.remove_prefix(value_end == std::string_view::npos ? rest.size() : value_end + 1);
  }
  return scalars;
}

}  // namespace vapor::store::detail
