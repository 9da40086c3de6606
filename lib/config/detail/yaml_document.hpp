#pragma once

#include <yaml-cpp/yaml.h>

#include <string_view>
#include <vector>

#include "config/config_error.hpp"

/// Internal to the config module.
namespace vapor::config::detail {

/// Nesting deeper than this is refused before yaml-cpp builds a tree (our files need five levels).
inline constexpr int max_yaml_depth = 32;

/// Turns text into one YAML tree, or into located errors. Checks first what yaml-cpp would
/// accept silently or report badly: invalid UTF-8, tabs in indentation, nesting deeper than
/// max_yaml_depth, more than one document. An empty text (or only comments) gives a Null root.
/// Never throws; any thread.
[[nodiscard]] Parsed<YAML::Node> parse_yaml_document(std::string_view text, std::string_view file);

/// 1-based location of a yaml-cpp mark; 0:0 (the whole file) for a null mark.
[[nodiscard]] ConfigError located_error(std::string_view file, const YAML::Mark& mark,
                                        std::string path, std::string message);

/// Orders errors as a reader meets them: whole-file errors first, then by line and column.
void sort_by_location(std::vector<ConfigError>& errors);

}  // namespace vapor::config::detail
