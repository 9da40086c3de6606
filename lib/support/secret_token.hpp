#pragma once

// Bearer tokens vapord hands out: 256 random bits as 64 hex characters (getrandom), and the
// SHA-256 (OpenSSL) under which a token is kept, so that the database never holds one that
// works.

#include <optional>
#include <string>
#include <string_view>

#include "support/result.hpp"

namespace vapor {

/// 32 bytes from getrandom(), in lowercase hex.
[[nodiscard]] Result<std::string> random_token();

/// The SHA-256 of `token`, in lowercase hex (64 characters); nothing if OpenSSL fails.
[[nodiscard]] std::optional<std::string> sha256_hex(std::string_view token);

}  // namespace vapor
