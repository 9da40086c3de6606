#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "support/result.hpp"

namespace vapor::app {

/// The bearer token for mutating API requests, and where it came from.
struct ApiToken {
  std::string token;
  std::filesystem::path path;
  bool created = false;  ///< true when vapord generated the file just now
};

/// Reads the token from `configured` (api.token_file) when set; otherwise reads
/// `<state_dir>/api-token`, creating it (mode 0600, 256 random bits in hex) when missing.
/// A configured file that is missing, empty or readable by others is an error.
Result<ApiToken> load_api_token(const std::optional<std::filesystem::path>& configured,
                                const std::filesystem::path& state_dir);

}  // namespace vapor::app
