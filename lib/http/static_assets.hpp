#pragma once

// The live page (`GET /` and `/assets/*`): web/index.html, app.js, app.css and uPlot, compiled
// into the binary at build time, so vapord serves it without files on disk or a CDN.

#include <string_view>

namespace vapor::http {

/// One file of the live page as served: fixed at build time, so any thread may read it.
struct StaticAsset {
  std::string_view path;          ///< the URL path it answers: "/", "/assets/app.js", ...
  std::string_view content_type;  ///< with a charset for text
  std::string_view etag;          ///< strong and quoted: "\"<first 32 hex digits of SHA-256>\""
  std::string_view body;
};

/// The page's Content-Security-Policy: its own scripts and styles only, no inline script, and
/// the WebSocket feed.
inline constexpr std::string_view live_page_csp = "default-src 'self'; connect-src 'self' ws: wss:";

/// The asset served at `path` (without a query), or nullptr. Paths match exactly against a fixed
/// list, so "/assets/../x", "/assets/%2e%2e/x" and anything unlisted find nothing.
[[nodiscard]] const StaticAsset* find_static_asset(std::string_view path);

/// Whether an If-None-Match header value names `etag` (a list of entity tags or "*"; the weak
/// comparison RFC 9110 prescribes for If-None-Match, so W/"x" matches "x").
[[nodiscard]] bool etag_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace vapor::http
