#pragma once

// Files compiled into the binary by cmake/EmbedAssets.cmake. Not a public header: the router
// reaches them through http/static_assets.hpp.

#include <cstddef>
#include <span>
#include <string_view>

namespace vapor::http::detail {

/// One embedded file: its bytes and their SHA-256 (lowercase hex), both fixed at build time.
struct EmbeddedFile {
  std::string_view name;
  const unsigned char* data = nullptr;
  std::size_t size = 0;
  std::string_view sha256;
};

/// Every embedded file, in the order the build listed them. Defined in generated code; safe to
/// call from any thread.
[[nodiscard]] std::span<const EmbeddedFile> embedded_files();

}  // namespace vapor::http::detail
