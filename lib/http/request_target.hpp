#pragma once

// Request targets: which resource a path names, and the query parameters the API reads. Pure
// functions on strings, exported for the router, its tests and its fuzzer.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vapor::http {

struct StaticAsset;

/// What a request's path names, before its method is looked at.
enum class Resource {
  index,
  asset,
  metrics,
  healthz,
  readyz,
  ws,
  jobs,
  job,
  points,
  events,
  start,
  stop,
  log,
  push,    ///< POST /api/v1/jobs/{id}/points
  finish,  ///< POST /api/v1/jobs/{id}/finish
  unknown,
};

/// A parsed request target.
struct Target {
  Resource resource = Resource::unknown;
  std::string job_ref;                 ///< the {id} segment, percent-decoded
  std::string_view query;              ///< after '?', still encoded
  const StaticAsset* asset = nullptr;  ///< for index and asset
};

/// The collection every job path hangs under.
inline constexpr std::string_view jobs_path = "/api/v1/jobs";

/// Splits a target into its resource, job reference and query. A malformed escape in the job
/// segment, an unknown path or an unlisted asset (e.g. "/assets/../x") is `Resource::unknown`.
[[nodiscard]] Target parse_target(std::string_view target);

/// An absolute-form request target ("http://host:port/path?query", RFC 9112 section 3.2.2), as a
/// proxy would send it. A server must accept it and take the host from it, not from Host.
struct AbsoluteForm {
  std::string_view authority;  ///< "host:port": checked as the Host header would be
  std::string origin_form;     ///< "/path?query" ("/" for an empty path)
  bool valid = true;           ///< false: no host, or user information ("http://u@host/")
};

/// The parts of an absolute-form target (scheme http or https, any case); nothing for the
/// origin form ("/path") and every other form.
[[nodiscard]] std::optional<AbsoluteForm> absolute_form(std::string_view target);

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in a query); nothing when an
/// escape is malformed.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

/// A decimal integer of at most 20 digits that fits in 64 bits, nothing else.
[[nodiscard]] std::optional<std::uint64_t> parse_unsigned(std::string_view text);

/// Reads query parameters and keeps the first problem: once one has failed, the others return
/// nothing, so that several can be read in a row and one message reported.
class QueryReader {
 public:
  explicit QueryReader(std::string_view query) : query_(query) {}

  /// The decoded value of parameter `name` (the last one if repeated), or nothing.
  [[nodiscard]] std::optional<std::string> text(std::string_view name);
  /// An optional integer parameter in [min, max].
  [[nodiscard]] std::optional<std::uint64_t> integer(std::string_view name, std::uint64_t min,
                                                     std::uint64_t max);

  /// What was wrong with the first bad parameter: its name and what was expected.
  [[nodiscard]] const std::optional<std::string>& problem() const { return problem_; }

 private:
  std::string_view query_;
  std::optional<std::string> problem_;
};

}  // namespace vapor::http
