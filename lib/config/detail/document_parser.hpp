#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "config/config_error.hpp"
#include "config/detail/node_validator.hpp"
#include "config/detail/yaml_document.hpp"

/// Internal to the config module.
namespace vapor::config::detail {

/// Parses `text` and runs `read(validator, root, value)` on the tree. Errors come out in file
/// order; the value is kept only when there is none. Never throws.
template <class T, class Read>
Parsed<T> parse_document(std::string_view text, std::string_view file, Read read) {
  Parsed<T> parsed;
  try {
    Parsed<YAML::Node> document = parse_yaml_document(text, file);
    if (!document.ok()) {
      parsed.errors = std::move(document.errors);
      return parsed;
    }
    NodeValidator validator(file, parsed.errors);
    read(validator, document.value, parsed.value);
  } catch (const std::exception& error) {
    parsed.errors.push_back(
        ConfigError{std::string(file), 0, 0, "", std::string("cannot parse: ") + error.what()});
  }
  sort_by_location(parsed.errors);
  if (!parsed.ok()) parsed.value = T{};
  return parsed;
}

}  // namespace vapor::config::detail
