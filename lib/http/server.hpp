#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "support/result.hpp"

namespace boost::asio {
class io_context;
}

namespace vapor::http {

struct RouterContext;
class FeedHub;

/// Limits and address of the one HTTP/WebSocket listener; every limit has a config key.
struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9786;  ///< 0 picks a free port (see Server::listen)
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds read_timeout{30'000};  ///< per request, and idle keep-alive
  std::size_t max_connections = 512;
  std::size_t websocket_max_clients = 256;
  std::size_t websocket_send_queue_bytes = 4 * 1024 * 1024;
  std::size_t websocket_max_message_bytes = 64 * 1024;  ///< client → server
  std::size_t websocket_replay_page = 1000;             ///< points read per replay step
  /// A client closed for falling behind gets this long to read what is in flight and answer the
  /// close frame (1008) before its socket is cut.
  std::chrono::milliseconds websocket_close_grace{10'000};
  /// SO_SNDBUF for feed connections; 0 leaves the kernel's autotuning. A small value makes a
  /// stalled client show up in the send queue sooner (tests use it).
  std::size_t websocket_socket_send_buffer = 0;
  std::string server_version = "vapord";
};

/// What the server reports for metrics. Called on the event loop.
class ServerObserver {
 public:
  ServerObserver() = default;
  ServerObserver(const ServerObserver&) = delete;
  ServerObserver& operator=(const ServerObserver&) = delete;
  virtual ~ServerObserver() = default;

  virtual void on_request(std::string_view handler, unsigned status) = 0;
  virtual void on_websocket_clients(std::size_t clients) = 0;
  virtual void on_websocket_disconnect(std::string_view reason) = 0;
};

/// The one Beast listener: HTTP/1.1 with keep-alive, the JSON API through `route`, and WebSocket
/// upgrades on /ws fed by the FeedHub. Shaped like Beast's advanced server: listener →
/// http_session → websocket_session. Runs on the io_context's single thread; `stop()` closes
/// the listener and every connection (WebSocket clients get 1001 going away) so that the loop
/// drains.
class Server {
 public:
  Server(boost::asio::io_context& ioc, ServerOptions options, RouterContext& router,
         FeedHub& hub, ServerObserver& observer);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts accepting; returns the bound port. An error names the address.
  Result<std::uint16_t> listen();
  void stop();
  [[nodiscard]] std::size_t connection_count() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vapor::http
