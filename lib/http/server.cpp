#include "http/server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <vector>

#include "http/detail/server_state.hpp"
#include "support/log.hpp"

namespace vapor::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& ioc, ServerOptions options, RouterContext& router, FeedHub& hub,
       ServerObserver& observer)
      : acceptor(ioc),
        backoff_timer(ioc),
        state(std::make_shared<detail::ServerState>(
            detail::ServerState{std::move(options), router, hub, observer, {}, 0, false})) {}

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
        // Over api.max_connections: refuse by closing at once; existing clients are unaffected.
        boost::system::error_code ignored;
        socket.close(ignored);
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

Server::~Server() { stop(); }

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
