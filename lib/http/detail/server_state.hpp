#pragma once

// Internals of the Beast server shared by the listener and the sessions. Not a public header.

#include <cstddef>
#include <memory>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/feed_hub.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace vapor::http::detail {

/// A live connection that the server can ask to close on shutdown.
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  virtual ~Connection() = default;
  virtual void shutdown() = 0;
};

/// What every session reads: options, the router, the hub, the observer and the registry of
/// live connections. Event-loop thread only.
struct ServerState {
  ServerOptions options;
  RouterContext& router;
  FeedHub& hub;
  ServerObserver& observer;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections;
  std::size_t websocket_clients = 0;
  bool stopping = false;
  /// Set when the Server is destroyed: router, hub and observer may be gone with it. A session
  /// that outlives it (a handler the io_context destroys later) only releases its socket.
  bool detached = false;
  std::size_t refusals_in_flight = 0;  ///< connections over max_connections being answered 503
};

/// Starts the HTTP session for an accepted socket.
void start_http_session(boost::asio::ip::tcp::socket socket,
                        const std::shared_ptr<ServerState>& state);

/// Hands an upgraded connection and its upgrade request to a new WebSocket session.
void start_websocket_session(boost::beast::tcp_stream stream, Request request,
                             const std::shared_ptr<ServerState>& state);

}  // namespace vapor::http::detail
