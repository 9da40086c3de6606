#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "config/config_error.hpp"

/// Internal to the config module.
namespace vapor::config::detail {

/// The whole text of a file of at most `max_bytes` bytes; otherwise one error labelled with the
/// path that says what went wrong (the OS's reason, or the size and the limit). Never throws.
[[nodiscard]] Parsed<std::string> read_config_file(const std::filesystem::path& path,
                                                   std::size_t max_bytes);

}  // namespace vapor::config::detail
