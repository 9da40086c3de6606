#include "client/api_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>

namespace vapor::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

Result<Endpoint> Endpoint::parse(std::string_view url) {
  if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else if (url.starts_with("https://")) {
    return fail("https is not supported by vaporctl; point --url at vapord's own http listener");
  }
  if (const auto slash = url.find('/'); slash != std::string_view::npos) url = url.substr(0, slash);
  if (url.empty()) return fail("--url needs a host, such as http://127.0.0.1:9786");
  Endpoint endpoint;
  if (url.front() == '[') {  // [::1]:9786
    const auto close = url.find(']');
    if (close == std::string_view::npos) return fail("unclosed '[' in --url");
    endpoint.host = std::string(url.substr(1, close - 1));
    if (close + 1 < url.size() && url[close + 1] == ':') endpoint.port = std::string(url.substr(close + 2));
  } else if (const auto colon = url.rfind(':'); colon != std::string_view::npos) {
    endpoint.host = std::string(url.substr(0, colon));
    endpoint.port = std::string(url.substr(colon + 1));
  } else {
    endpoint.host = std::string(url);
  }
  if (endpoint.port.empty() ||
      endpoint.port.find_first_not_of("0123456789") != std::string::npos) {
    return fail("bad port in --url '" + std::string(url) + "'");
  }
  return endpoint;
}

ApiClient::ApiClient(Endpoint endpoint, std::string token, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), token_(std::move(token)), timeout_(timeout) {}

Result<ApiResponse> ApiClient::get(std::string_view target) const {
  return send(false, target, {});
}

Result<ApiResponse> ApiClient::post(std::string_view target, std::string_view json_body) const {
  return send(true, target, json_body);
}

Result<ApiResponse> ApiClient::post(std::string_view target, std::string_view body,
                                    std::string_view content_type) const {
  return send(true, target, body, content_type);
}

Result<ApiResponse> ApiClient::send(bool is_post, std::string_view target, std::string_view body,
                                    std::string_view content_type) const {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  const auto where = "vapord at " + endpoint_.host_header();
  const auto results = resolver.resolve(endpoint_.host, endpoint_.port, ec);
  if (ec) return fail("cannot resolve " + where + ": " + ec.message());
  stream.expires_after(timeout_);
  stream.connect(results, ec);
  if (ec) return fail("cannot connect to " + where + ": " + ec.message());

  beast_http::request<beast_http::string_body> request{
      is_post ? beast_http::verb::post : beast_http::verb::get, std::string(target), 11};
  request.set(beast_http::field::host, endpoint_.host_header());
  request.set(beast_http::field::user_agent, "vaporctl");
  request.set(beast_http::field::accept, "application/json");
  if (!token_.empty()) request.set(beast_http::field::authorization, "Bearer " + token_);
  if (is_post) {
    request.set(beast_http::field::content_type, content_type);
    request.body() = std::string(body);
  }
  request.keep_alive(false);
  request.prepare_payload();
  beast_http::write(stream, request, ec);
  if (ec) return fail("cannot send to " + where + ": " + ec.message());

  beast::flat_buffer buffer;
  beast_http::response_parser<beast_http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  beast_http::read(stream, buffer, parser, ec);
  if (ec) return fail("no answer from " + where + ": " + ec.message());
  auto response = parser.release();

  ApiResponse answer;
  answer.status = response.result_int();
  if (auto location = response.find(beast_http::field::location); location != response.end()) {
    answer.location = std::string(location->value());
  }
  if (auto size = response.find("X-Log-Size"); size != response.end()) {
    answer.log_size = std::string(size->value());
  }
  boost::system::error_code parse_error;
  answer.body = boost::json::parse(response.body(), parse_error);
  if (parse_error) answer.body = nullptr;
  answer.text = std::move(response.body());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return answer;
}

struct FeedConnection::Impl {
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buffer;
};

FeedConnection::FeedConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FeedConnection::~FeedConnection() {
  beast::error_code ignored;
  if (impl_->ws.is_open()) impl_->ws.close(websocket::close_code::normal, ignored);
}

Result<std::unique_ptr<FeedConnection>> FeedConnection::open(const Endpoint& endpoint) {
  auto impl = std::make_unique<Impl>();
  tcp::resolver resolver(impl->ioc);
  beast::error_code ec;
  const auto where = "vapord's feed at " + endpoint.host_header();
  const auto results = resolver.resolve(endpoint.host, endpoint.port, ec);
  if (ec) return fail("cannot resolve " + where + ": " + ec.message());
  asio::connect(impl->ws.next_layer(), results, ec);
  if (ec) return fail("cannot connect to " + where + ": " + ec.message());
  impl->ws.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
    request.set(beast_http::field::user_agent, "vaporctl");
  }));
  impl->ws.read_message_max(64 * 1024 * 1024);
  impl->ws.handshake(endpoint.host_header(), "/ws", ec);
  if (ec) return fail("WebSocket handshake with " + where + " failed: " + ec.message());
  return std::unique_ptr<FeedConnection>(new FeedConnection(std::move(impl)));
}

Result<void> FeedConnection::send(std::string_view text) {
  beast::error_code ec;
  impl_->ws.text(true);
  impl_->ws.write(asio::buffer(text.data(), text.size()), ec);
  if (ec) return fail("cannot send on the feed: " + ec.message());
  return {};
}

Result<boost::json::object> FeedConnection::next() {
  beast::error_code ec;
  impl_->buffer.consume(impl_->buffer.size());
  impl_->ws.read(impl_->buffer, ec);
  if (ec == websocket::error::closed) {
    return fail("vapord closed the feed (" + std::string(impl_->ws.reason().reason.c_str()) + ")");
  }
  if (ec) return fail("feed connection lost: " + ec.message());
  boost::system::error_code parse_error;
  auto value = boost::json::parse(beast::buffers_to_string(impl_->buffer.data()), parse_error);
  if (parse_error || !value.is_object()) return fail("vapord sent a message that is not JSON");
  return std::move(value.as_object());
}

}  // namespace vapor::client
