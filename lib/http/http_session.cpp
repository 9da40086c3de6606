// One HTTP/1.1 connection: read a request (bounded header and body, timed), answer it through
// `route`, keep the connection alive or close it; hand WebSocket upgrades to a websocket session.

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <chrono>
#include <optional>

#include "http/detail/server_state.hpp"
#include "http/request_target.hpp"

namespace vapor::http::detail {
namespace {

namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
namespace asio = boost::asio;

/// After refusing a request it did not read whole (413, 431, a malformed one), the session reads
/// and drops what the client still sends, up to this much for this long, before closing: a
/// client that writes its whole body before reading (python's http.client, requests) then gets
/// the answer instead of a reset connection.
constexpr std::size_t drain_limit_bytes = 4 * 1024 * 1024;
constexpr std::chrono::seconds drain_limit_time{2};

class HttpSession final : public Connection, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::ip::tcp::socket socket, std::shared_ptr<ServerState> state)
      : stream_(std::move(socket)), state_(std::move(state)) {}

  ~HttpSession() override { state_->connections.erase(this); }

  void run() {
    state_->connections.emplace(this, weak_from_this());
    do_read();
  }

  void shutdown() override {
    // Close now, even mid-response: a client that stopped reading must not hold up the drain.
    closing_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void do_read() {
    if (closing_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_->options.max_header_bytes));
    parser_->body_limit(state_->options.max_body_bytes);
    stream_.expires_after(state_->options.read_timeout);
    beast_http::async_read(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             self->on_read(ec);
                           });
  }

  void on_read(beast::error_code ec) {
    if (ec == beast_http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || closing_) {
      return do_close();
    }
    if (ec == beast_http::error::header_limit) {
      drain_before_close_ = true;
      return send_error(431, "header_too_large",
                        "request headers exceed " +
                            std::to_string(state_->options.max_header_bytes) + " bytes");
    }
    if (ec == beast_http::error::body_limit) {
      drain_before_close_ = true;
      return send_error(413, "body_too_large",
                        "request body exceeds " + std::to_string(state_->options.max_body_bytes) +
                            " bytes");
    }
    const bool parse_error =
        ec && ec.category() == beast_http::make_error_code(beast_http::error::bad_target).category() &&
        ec != beast_http::error::partial_message;
    if (parse_error) {
      // A parse error: the client is there but sent something that is not HTTP.
      drain_before_close_ = true;
      return send_error(400, "bad_request", "malformed HTTP request: " + ec.message());
    }
    if (ec) return do_close();  // the connection itself failed (reset, partial message)

    Request request = parser_->release();
    if (auto refused = transfer_encoding_refusal(request)) {
      return send_error(400, "bad_transfer_encoding", *refused);
    }
    if (beast::websocket::is_upgrade(request)) return upgrade(std::move(request));

    // The answer may come later (history is read on the store thread); the session waits for
    // it before reading the next request, so pipelined answers keep their order.
    route(request, state_->router, [self = shared_from_this()](Routed routed) {
      self->state_->observer.on_request(routed.handler, routed.response.result_int());
      self->send(std::move(routed.response), std::move(routed.shared_body));
    });
  }

  /// RFC 9112 section 6.3: a request body is framed by `chunked` or by Content-Length. Any other
  /// transfer coding, or both at once, leaves where the body ends to the reader's guess (request
  /// smuggling): such a request is refused and the connection closed, so that nothing after it
  /// is read as a request of its own.
  static std::optional<std::string> transfer_encoding_refusal(const Request& request) {
    const auto coding = request.find(beast_http::field::transfer_encoding);
    if (coding == request.end()) return std::nullopt;
    std::string_view value(coding->value().data(), coding->value().size());
    const auto first = value.find_first_not_of(" \t");
    value = first == std::string_view::npos
                ? std::string_view()
                : value.substr(first, value.find_last_not_of(" \t") - first + 1);
    if (request.count(beast_http::field::transfer_encoding) > 1 ||
        !beast::iequals(value, "chunked")) {
      return "Transfer-Encoding \"" + std::string(value) +
             "\" is not accepted; send the body with Content-Length or as chunked alone";
    }
    if (request.find(beast_http::field::content_length) != request.end()) {
      return std::string("a request carries Transfer-Encoding or Content-Length, not both");
    }
    return std::nullopt;
  }

  void upgrade(Request request) {
    std::string_view target(request.target().data(), request.target().size());
    const auto absolute = absolute_form(target);  // "http://host/ws": routed as "/ws"
    if (absolute) target = absolute->origin_form;
    std::optional<Response> refusal;
    if (target != "/ws" && !target.starts_with("/ws?")) {
      refusal = error_response(404, "not_found", "WebSocket upgrades are served on /ws only",
                               request.version(), false);
    } else if (auto checked = check_websocket_upgrade(request, state_->router.access)) {
      refusal = std::move(*checked);
    } else if (state_->websocket_clients >= state_->options.websocket_max_clients) {
      refusal = error_response(
          503, "too_many_clients",
          "the WebSocket feed has reached websocket.max_clients = " +
              std::to_string(state_->options.websocket_max_clients),
          request.version(), false);
    }
    if (refusal) {
      refusal->keep_alive(false);
      state_->observer.on_request("ws", refusal->result_int());
      return send(std::move(*refusal));
    }
    state_->observer.on_request("ws", 101);
    stream_.expires_never();
    start_websocket_session(std::move(stream_), std::move(request), state_);
  }

  void send_error(unsigned status, std::string_view code, const std::string& message) {
    auto response = error_response(status, code, message, 11, false);
    state_->observer.on_request("error", status);
    send(std::move(response));
  }

  /// Writes a prepared response (Content-Length set by whoever built it; HEAD keeps it), then
  /// `shared_body` if any: the rest of the body, held by reference while it is written.
  void send(Response response, std::shared_ptr<const std::string> shared_body = nullptr) {
    keep_alive_ = response.keep_alive() && !closing_;
    auto shared = std::make_shared<Response>(std::move(response));
    writing_ = true;
    stream_.expires_after(state_->options.read_timeout);
    beast_http::async_write(
        stream_, *shared,
        [self = shared_from_this(), shared, rest = std::move(shared_body)](beast::error_code ec,
                                                                           std::size_t) {
          if (ec || !rest) return self->on_write(ec);
          asio::async_write(self->stream_, asio::buffer(*rest),
                            [self, rest](beast::error_code rest_ec, std::size_t) {
                              self->on_write(rest_ec);
                            });
        });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (!ec && drain_before_close_ && !closing_) return start_drain();
    if (ec || !keep_alive_ || closing_) return do_close();
    do_read();
  }

  /// The answer is out: stop sending, and read what the client still sends until it closes or a
  /// limit is reached; then close.
  void start_drain() {
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream_.expires_after(drain_limit_time);
    buffer_.consume(buffer_.size());
    do_drain();
  }

  void do_drain() {
    stream_.async_read_some(buffer_.prepare(64 * 1024),
                            [self = shared_from_this()](beast::error_code ec, std::size_t read) {
                              self->drained_ += read;
                              if (ec || self->closing_ || self->drained_ >= drain_limit_bytes) {
                                return self->do_close();
                              }
                              self->do_drain();  // buffer_ is reused: nothing is committed
                            });
  }

  void do_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerState> state_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  bool keep_alive_ = true;
  bool writing_ = false;
  bool closing_ = false;
  bool drain_before_close_ = false;  ///< the refused request was not read whole
  std::size_t drained_ = 0;
};

}  // namespace

void start_http_session(asio::ip::tcp::socket socket, const std::shared_ptr<ServerState>& state) {
  std::make_shared<HttpSession>(std::move(socket), state)->run();
}

}  // namespace vapor::http::detail
