#include "http/access.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>

namespace vapor::http {
namespace {

constexpr std::string_view whitespace = " \t";

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(whitespace);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(whitespace);
  return text.substr(first, last - first + 1);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lower(x) == lower(y);
         });
}

/// A host name and optional port, as in a Host header or an Origin: the name lower-cased, an IPv6
/// literal kept in brackets, a trailing dot (fully qualified form) dropped.
struct Authority {
  std::string name;
  std::optional<std::uint16_t> port;
};

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || stop != end || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

/// Parses `name[:port]` or `[v6]:port`; nothing when it is not an authority (empty name, stray
/// characters, a bad port). An empty port (`host:`) counts as none, as RFC 3986 allows.
std::optional<Authority> parse_authority(std::string_view text) {
  Authority out;
  std::string_view name;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = text.substr(0, close + 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    const auto colon = text.find(':');
    if (colon != std::string_view::npos) {
      if (text.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
      port = text.substr(colon + 1);
      name = text.substr(0, colon);
    } else {
      name = text;
    }
    if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  }
  if (name.empty() || name == "[]") return std::nullopt;
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f || c == '/' || c == '@' || c == '\\' || c == '?' ||
        c == '#') {
      return std::nullopt;
    }
  }
  if (!port.empty()) {
    out.port = parse_port(port);
    if (!out.port) return std::nullopt;
  }
  out.name = lowercase(name);
  return out;
}

/// The listen address as a Host would name it: an IPv6 literal gets its brackets.
std::optional<Authority> listen_authority(const AccessPolicy& access) {
  if (access.listen_host.empty()) return std::nullopt;
  Authority out;
  const bool bare_ipv6 = access.listen_host.find(':') != std::string::npos &&
                         access.listen_host.front() != '[';
  out.name = lowercase(bare_ipv6 ? "[" + access.listen_host + "]" : access.listen_host);
  out.port = access.listen_port;
  return out;
}

bool is_loopback_name(std::string_view name) {
  return name == "localhost" || name == "127.0.0.1" || name == "[::1]";
}

/// An origin (`scheme://host[:port]`, an optional trailing slash) with its port made explicit.
struct Origin {
  std::string scheme;
  Authority authority;
};

std::optional<std::uint16_t> default_port(std::string_view scheme) {
  if (scheme == "http") return 80;
  if (scheme == "https") return 443;
  return std::nullopt;
}

std::optional<Origin> parse_origin(std::string_view text) {
  const auto separator = text.find("://");
  if (separator == std::string_view::npos || separator == 0) return std::nullopt;
  Origin out;
  out.scheme = lowercase(text.substr(0, separator));
  std::string_view rest = text.substr(separator + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto authority = parse_authority(rest);
  if (!authority) return std::nullopt;
  out.authority = std::move(*authority);
  if (!out.authority.port) out.authority.port = default_port(out.scheme);
  return out;
}

bool same_origin(const Origin& a, const Origin& b) {
  return a.scheme == b.scheme && a.authority.name == b.authority.name &&
         a.authority.port == b.authority.port;
}

}  // namespace

bool constant_time_equal(std::string_view expected, std::string_view given) {
  // Walks all of `expected` whatever `given` holds, folding every difference into one value.
  unsigned difference = expected.size() == given.size() ? 0U : 1U;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto theirs = static_cast<unsigned char>(i < given.size() ? given[i] : '\0');
    difference |= static_cast<unsigned>(static_cast<unsigned char>(expected[i]) ^ theirs);
  }
  return difference == 0;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  const auto space = authorization.find_first_of(whitespace);
  if (space == std::string_view::npos || !iequals(authorization.substr(0, space), "Bearer")) {
    return std::nullopt;
  }
  const std::string_view token = trim(authorization.substr(space));
  if (token.empty()) return std::nullopt;
  return token;
}

TokenCheck check_bearer_token(std::string_view authorization, const AccessPolicy& access) {
  if (access.api_token.empty()) return TokenCheck::no_token_set;
  authorization = trim(authorization);
  const auto space = authorization.find_first_of(whitespace);
  if (space == std::string_view::npos) {
    // "Bearer" alone carries no token; anything else is not our scheme.
    return iequals(authorization, "Bearer") ? TokenCheck::wrong_token : TokenCheck::missing;
  }
  if (!iequals(authorization.substr(0, space), "Bearer")) return TokenCheck::missing;
  const std::string_view token = trim(authorization.substr(space));
  return constant_time_equal(access.api_token, token) ? TokenCheck::accepted
                                                       : TokenCheck::wrong_token;
}

bool host_allowed(std::string_view host, const AccessPolicy& access) {
  host = trim(host);
  if (host.empty()) return true;
  const auto requested = parse_authority(host);
  if (!requested) return false;
  if (is_loopback_name(requested->name)) return true;
  if (const auto listen = listen_authority(access);
      listen && listen->name == requested->name &&
      (!requested->port || requested->port == listen->port)) {
    return true;
  }
  return std::any_of(access.allowed_hosts.begin(), access.allowed_hosts.end(),
                     [&](const std::string& entry) {
                       const auto allowed = parse_authority(trim(entry));
                       return allowed && allowed->name == requested->name &&
                              (!allowed->port || allowed->port == requested->port);
                     });
}

bool origin_allowed(std::optional<std::string_view> origin, std::string_view host,
                    const AccessPolicy& access) {
  if (!origin) return true;
  const std::string_view text = trim(*origin);
  const auto parsed = parse_origin(text);

  for (const std::string& entry : access.allowed_origins) {
    const auto allowed = parse_origin(trim(entry));
    if ((allowed && parsed) ? same_origin(*allowed, *parsed) : iequals(trim(entry), text)) {
      return true;
    }
  }

  // Same origin: the page was served by this very host, over http (or https via a proxy).
  host = trim(host);
  if (!parsed || host.empty()) return false;
  const auto served = parse_authority(host);
  if (!served) return false;
  Origin self{parsed->scheme, *served};
  if (!self.authority.port) self.authority.port = default_port(self.scheme);
  return (parsed->scheme == "http" || parsed->scheme == "https") && same_origin(self, *parsed);
}

}  // namespace vapor::http
