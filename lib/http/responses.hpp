#pragma once

// Building API responses: JSON bodies, the error shape `{"error":{"code","message"}}` and the
// status each kind of refusal gets. Used by the router and its endpoints; no I/O.

#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "http/access.hpp"
#include "http/router.hpp"

namespace vapor::http {

inline constexpr std::string_view json_type = "application/json";

/// A response with a body, its length set and `X-Content-Type-Options: nosniff`.
[[nodiscard]] Response make_response(unsigned status, std::string_view content_type,
                                     std::string body, unsigned version, bool keep_alive);

/// A JSON response to `request` (same version and keep-alive), never cached.
[[nodiscard]] Response json_response(unsigned status, const boost::json::value& body,
                                     const Request& request);

/// `error_response` for `request`.
[[nodiscard]] Response error(unsigned status, std::string_view code, std::string_view message,
                             const Request& request);

/// An error with a `details` array (one line per problem), when there is more than one.
[[nodiscard]] Response error_with_details(unsigned status, std::string_view code,
                                          std::string_view message, boost::json::array details,
                                          const Request& request);

/// A refused change: 404 not_found, 409 conflict, 400 invalid_request, 503 unavailable or 403.
[[nodiscard]] Response control_error(const ControlError& failure, const Request& request);

/// 401 with the `WWW-Authenticate` challenge that says what was wrong with the token.
[[nodiscard]] Response unauthorized(TokenCheck check, const Request& request);

/// A header's value, or empty.
[[nodiscard]] std::string_view field_value(const Request& request,
                                           boost::beast::http::field name);

}  // namespace vapor::http
