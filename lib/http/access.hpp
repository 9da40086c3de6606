#pragma once

// Who may call what, as pure functions of header values (no Beast, so the app can build an
// AccessPolicy without pulling in the HTTP stack): the Host names served (a DNS-rebinding guard),
// the Origins allowed to open the WebSocket feed, and the bearer token that mutations need.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vapor::http {

/// Who may call what: the bearer token for mutations, the Host names served, the Origins allowed
/// to open the WebSocket feed. Plain data; read by `route` on the event-loop thread.
struct AccessPolicy {
  std::string api_token;  ///< empty: every mutating request gets 401
  std::string listen_host;
  std::uint16_t listen_port = 0;
  std::vector<std::string> allowed_hosts;    ///< extra Host names (with or without :port)
  std::vector<std::string> allowed_origins;  ///< e.g. "https://grafana.example.com"
};

/// True when both strings are equal, in a time that depends on `expected`'s length only (not on
/// where `given` first differs). Any thread.
[[nodiscard]] bool constant_time_equal(std::string_view expected, std::string_view given);

/// What an `Authorization` header proves about a mutating request.
enum class TokenCheck {
  accepted,      ///< `Bearer <the configured token>`
  missing,       ///< no header, or another scheme (Basic, ...)
  wrong_token,   ///< `Bearer <something else>`
  no_token_set,  ///< the daemon has no token configured: every mutation is refused
};

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive); nothing for another
/// scheme or no token.
[[nodiscard]] std::optional<std::string_view> bearer_token(std::string_view authorization);

/// Checks `Authorization: Bearer <token>` (scheme case-insensitive) against `access.api_token`.
[[nodiscard]] TokenCheck check_bearer_token(std::string_view authorization,
                                            const AccessPolicy& access);

/// True when a `Host` header value names this server: the listen address (`listen_host`, with
/// `listen_port` or no port), `localhost`, `127.0.0.1` or `[::1]` (any port: tunnels and proxies
/// remap it), or an `allowed_hosts` entry (any port unless the entry gives one). Names compare
/// case-insensitively. An empty value (no Host, as HTTP/1.0 allows) is served.
[[nodiscard]] bool host_allowed(std::string_view host, const AccessPolicy& access);

/// True when a WebSocket upgrade with this `Origin` (nothing: no header) may proceed. No Origin
/// is a non-browser client and may; otherwise the Origin must be the served host itself
/// (`http://<Host>` or `https://<Host>`, default ports understood) or one of `allowed_origins`.
[[nodiscard]] bool origin_allowed(std::optional<std::string_view> origin, std::string_view host,
                                  const AccessPolicy& access);

}  // namespace vapor::http
