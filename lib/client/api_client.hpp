#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "support/result.hpp"

namespace vapor::client {

/// Where vapord listens: parsed from `http://host:port` (the scheme may be left out).
struct Endpoint {
  std::string host = "127.0.0.1";
  std::string port = "9786";

  static Result<Endpoint> parse(std::string_view url);
  [[nodiscard]] std::string host_header() const { return host + ":" + port; }
};

/// One HTTP answer: status and parsed JSON body (null when the body is empty or not JSON).
struct ApiResponse {
  unsigned status = 0;
  boost::json::value body;
  std::string location;  ///< the Location header, if any
  std::string text;      ///< the body as sent (a job log is text/plain)
  std::string log_size;  ///< the X-Log-Size header of a job log, if any
};

/// A blocking JSON client for vapord's API, one connection per call. For command-line tools;
/// not for the daemon's event loop.
class ApiClient {
 public:
  ApiClient(Endpoint endpoint, std::string token, std::chrono::milliseconds timeout);

  /// Transport failures (refused, timed out) are errors; HTTP error statuses are responses.
  Result<ApiResponse> get(std::string_view target) const;
  Result<ApiResponse> post(std::string_view target, std::string_view json_body = {}) const;
  /// A POST whose body is of another type (e.g. `application/x-ndjson`).
  Result<ApiResponse> post(std::string_view target, std::string_view body,
                           std::string_view content_type) const;

  [[nodiscard]] const Endpoint& endpoint() const { return endpoint_; }

 private:
  Result<ApiResponse> send(bool is_post, std::string_view target, std::string_view body,
                           std::string_view content_type = "application/json") const;

  Endpoint endpoint_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

/// A blocking WebSocket feed client: connect, optionally subscribe, then read messages.
class FeedConnection {
 public:
  static Result<std::unique_ptr<FeedConnection>> open(const Endpoint& endpoint);
  ~FeedConnection();
  FeedConnection(const FeedConnection&) = delete;
  FeedConnection& operator=(const FeedConnection&) = delete;

  Result<void> send(std::string_view text);
  /// The next message, or an error when the connection ends.
  Result<boost::json::object> next();

 private:
  struct Impl;
  explicit FeedConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vapor::client
