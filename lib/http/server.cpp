#include "http/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "http/detail/server_state.hpp"
#include "support/log.hpp"

namespace vapor::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

/// At most this many refusals are in flight; past it, a connection is closed unanswered.
constexpr std::size_t max_refusals = 64;
/// How long a refused connection may take to read its answer.
constexpr std::chrono::seconds refusal_grace{1};

/// The answer to a connection over api.max_connections, sent before reading its request (a
/// server may answer early; `Connection: close` tells the client not to wait for more).
const std::string& refusal_text() {
  static const std::string text = [] {
    const std::string body =
        R"({"error":{"code":"over_capacity","message":"vapord serves api.max_connections )"
        R"(connections at once; retry shortly"}})";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return text;
}

/// One refused connection: writes the 503, stops sending, reads (and drops) what the client
/// sent until it closes or `refusal_grace` passes, so that closing does not reset the
/// connection before the client has read the answer.
struct Refusal : std::enable_shared_from_this<Refusal> {
  Refusal(tcp::socket socket_in, std::shared_ptr<detail::ServerState> state_in)
      : socket(std::move(socket_in)), timer(socket.get_executor()), state(std::move(state_in)) {
    ++state->refusals_in_flight;
  }
  ~Refusal() { --state->refusals_in_flight; }

  void start() {
    timer.expires_after(refusal_grace);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->socket.close(ec);
    });
    asio::async_write(socket, asio::buffer(refusal_text()),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) return self->finish();
                        self->socket.shutdown(tcp::socket::shutdown_send, ec);
                        self->drain();
                      });
  }

  void drain() {
    socket.async_read_some(asio::buffer(scratch),
                           [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                             if (ec) return self->finish();
                             self->drain();
                           });
  }

  void finish() {
    boost::system::error_code ignored;
    timer.cancel();
    socket.close(ignored);
  }

  tcp::socket socket;
  asio::steady_timer timer;
  std::shared_ptr<detail::ServerState> state;
  std::array<char, 4096> scratch{};
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& ioc, ServerOptions options, RouterContext& router, FeedHub& hub,
       ServerObserver& observer)
      : acceptor(ioc),
        backoff_timer(ioc),
        state(std::make_shared<detail::ServerState>(
            detail::ServerState{std::move(options), router, hub, observer, {}, 0, false, 0})) {}

  void do_accept() {
    acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec,
                                                      tcp::socket socket) {
      self->on_accept(ec, std::move(socket));
    });
  }

  void on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      if (state->connections.size() >= state->options.max_connections) {
        // Over api.max_connections: a 503 (existing clients are unaffected); under a flood of
        // them, closed unanswered.
        state->observer.on_request("over_capacity", 503);
        if (state->refusals_in_flight < max_refusals && !state->stopping) {
          std::make_shared<Refusal>(std::move(socket), state)->start();
        } else {
          boost::system::error_code ignored;
          socket.close(ignored);
        }
      } else {
        detail::start_http_session(std::move(socket), state);
      }
    } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
      // Out of file descriptors: the connection stays in the backlog, so retrying at once
      // would spin. Back off and say so once per episode.
      if (!accept_backoff) {
        log::warning("http: accept failed (" + ec.message() +
                     "); retrying every 200 ms; lower api.max_connections or raise the fd limit");
      }
      accept_backoff = true;
      backoff_timer.expires_after(std::chrono::milliseconds(200));
      backoff_timer.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
        if (!wait_ec) self->do_accept();
      });
      return;
    }
    accept_backoff = false;
    do_accept();
  }

  tcp::acceptor acceptor;
  asio::steady_timer backoff_timer;
  bool accept_backoff = false;
  std::shared_ptr<detail::ServerState> state;
};

Server::Server(asio::io_context& ioc, ServerOptions options, RouterContext& router, FeedHub& hub,
               ServerObserver& observer)
    : impl_(std::make_shared<Impl>(ioc, std::move(options), router, hub, observer)) {}

Server::~Server() {
  stop();
  impl_->state->detached = true;
}

Result<std::uint16_t> Server::listen() {
  const auto& options = impl_->state->options;
  const std::string where = options.host + ":" + std::to_string(options.port);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.host, ec);
  tcp::endpoint endpoint;
  if (!ec) {
    endpoint = tcp::endpoint(address, options.port);
  } else {
    // A host name: resolve it once at start.
    tcp::resolver resolver(impl_->acceptor.get_executor());
    auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec || results.empty()) return fail("cannot resolve listen address " + where + ": " + ec.message());
    endpoint = results.begin()->endpoint();
  }
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("cannot listen on " + where + ": " + ec.message());
  const auto port = acceptor.local_endpoint().port();
  impl_->do_accept();
  return port;
}

void Server::stop() {
  if (impl_->state->stopping) return;
  impl_->state->stopping = true;
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->backoff_timer.cancel();
  // Collect first: a shutdown may end a session and erase it from the registry.
  std::vector<std::shared_ptr<detail::Connection>> live;
  for (auto& [raw, weak] : impl_->state->connections) {
    if (auto connection = weak.lock()) live.push_back(std::move(connection));
  }
  for (auto& connection : live) connection->shutdown();
}

std::size_t Server::connection_count() const { return impl_->state->connections.size(); }

}  // namespace vapor::http
