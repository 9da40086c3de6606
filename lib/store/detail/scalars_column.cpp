#include "store/detail/scalars_column.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

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
  boost::system::error_code failure;
  const boost::json::value parsed = boost::json::parse(text, failure);
  if (failure || !parsed.is_object()) {
    return fail("the scalars column holds no JSON object: " + std::string(text.substr(0, 80)));
  }
  core::Scalars scalars;
  scalars.reserve(parsed.get_object().size());
  for (const auto& [key, value] : parsed.get_object()) {
    double number = 0.0;
    if (value.is_number()) {
      number = value.to_number<double>();
    } else if (value.is_string() && value.get_string() == "NaN") {
      number = std::numeric_limits<double>::quiet_NaN();
    } else if (value.is_string() && value.get_string() == "Infinity") {
      number = std::numeric_limits<double>::infinity();
    } else if (value.is_string() && value.get_string() == "-Infinity") {
      number = -std::numeric_limits<double>::infinity();
    } else {
      return fail("the scalars column holds a value that is not a number for \"" +
                  std::string(key) + "\": " + std::string(text.substr(0, 80)));
    }
    scalars.push_back({std::string(key), number});
  }
  return scalars;
}

}  // namespace vapor::store::detail
