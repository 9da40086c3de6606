// One WebSocket feed client's I/O: the handshake, reads of its subscribe messages, one batched
// write in flight, the store reads its replays ask for, and the close. What the client is owed
// and in which order (hello, live messages from the hub's log, replayed history) is decided by
// its FeedClient (http/feed_client.hpp), which does no I/O.
//
// Live messages are not queued per connection: whenever the socket is ready the FeedClient
// encodes every message due into one buffer of WebSocket frames, written with one call. What it
// owes a client is bounded: once more than websocket.send_queue_bytes wait for a client that has
// stopped reading, it is closed with 1008.

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/serialize.hpp>

#include "http/detail/feed_stream.hpp"
#include "http/detail/server_state.hpp"
#include "http/feed_client.hpp"
#include "http/json_codec.hpp"
#include "http/subscription.hpp"
#include "runtime/scheduler.hpp"
#include "store/job_history.hpp"

namespace vapor::http::detail {
namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace asio = boost::asio;

/// How long a client gets to finish the close handshake when the daemon shuts down.
constexpr std::chrono::seconds shutdown_close_grace{1};

/// A batch stops growing past this many bytes (one message larger than this goes alone).
constexpr std::size_t batch_bytes = 256 * 1024;

class WebSocketSession final : public Connection,
                               public FeedSubscriber,
                               public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(beast::tcp_stream stream, std::shared_ptr<ServerState> state)
      : ws_(FeedStream(std::move(stream))),
        state_(std::move(state)),
        client_(state_->hub, state_->router.scheduler,
                {state_->options.websocket_send_queue_bytes, state_->options.websocket_replay_page,
                 batch_bytes}),
        close_timer_(ws_.get_executor()) {}

  ~WebSocketSession() override {
    state_->connections.erase(this);
    if (!accepted_) return;
    --state_->websocket_clients;
    // Destroyed after the Server (by the io_context, as a pending handler's capture): the hub
    // and the observer may be gone; there is no one left to tell.
    if (state_->detached) return;
    leave_hub();
    state_->observer.on_websocket_clients(state_->websocket_clients);
    report_disconnect();
  }

  void run(Request request) {
    state_->connections.emplace(this, weak_from_this());
    ++state_->websocket_clients;  // reserve the slot now; released in the destructor
    accepted_ = true;
    state_->observer.on_websocket_clients(state_->websocket_clients);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [version = state_->options.server_version](websocket::response_type& response) {
          response.set(beast::http::field::server, version);
        }));
    ws_.read_message_max(state_->options.websocket_max_message_bytes);
    if (const auto size = state_->options.websocket_socket_send_buffer; size > 0) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().set_option(
          asio::socket_base::send_buffer_size(static_cast<int>(size)), ignored);
    }
    ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
      self->on_accept(ec);
    });
  }

  void shutdown() override {
    if (!live_) {
      beast::get_lowest_layer(ws_).close();  // still in the handshake
      return;
    }
    if (closing_) {
      // Already closing (a slow consumer): do not let its longer grace hold up the shutdown.
      close_timer_.expires_after(shutdown_close_grace);
      close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) beast::get_lowest_layer(self->ws_).close();
      });
      return;
    }
    close(websocket::close_code::going_away, "server shutting down", "shutdown",
          shutdown_close_grace);
  }

  void on_feed_appended() override {
    if (closing_) return;
    if (writing_) {
      // The write in flight will take the new messages when it completes; meanwhile make sure
      // that what waits for this client stays bounded.
      check_backlog();
      return;
    }
    do_write();
  }

  [[nodiscard]] std::uint64_t feed_cursor() const override { return client_.cursor(); }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      disconnect_reason_ = "handshake_failed";
      return;
    }
    live_ = true;
    client_.start();
    state_->hub.add(*this);
    in_hub_ = true;
    send_hello();
    do_read();
  }

  void leave_hub() {
    if (!in_hub_) return;
    in_hub_ = false;
    state_->hub.remove(*this);
  }

  void send_hello() {
    // The job list is the API's, summaries serialised once per step of each job.
    std::string hello = "\"type\":\"hello\",\"server\":" +
                        boost::json::serialize(boost::json::value(state_->options.server_version)) +
                        ",\"jobs\":";
    state_->router.job_list.append_array(hello, state_->router.scheduler.jobs());
    hello.push_back('}');
    send_own(std::move(hello));
  }

  void send_error(const std::string& message) { send_own(feed_error_body(message)); }

  void do_read() {
    ws_.async_read(read_buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (ec == websocket::error::closed) {
        if (disconnect_reason_ == "error") disconnect_reason_ = "client_closed";
      } else if (ec == websocket::error::message_too_big) {
        disconnect_reason_ = "message_too_big";
      } else if (ec == beast::error::timeout) {
        disconnect_reason_ = "timeout";
      }
      closing_ = true;
      leave_hub();
      close_timer_.cancel();
      return;
    }
    const auto text = beast::buffers_to_string(read_buffer_.data());
    read_buffer_.consume(read_buffer_.size());
    if (!ws_.got_text()) {
      send_error("binary messages are not accepted; send JSON text");
    } else if (auto subscription = parse_subscription(text); !subscription) {
      send_error(subscription.error().message);
    } else {
      subscribe(*subscription);
    }
    if (!closing_) do_read();
  }

  void subscribe(const Subscription& subscription) {
    for (const FeedStatesRead& read : client_.subscribe(subscription)) {
      state_->router.history.load_transitions(
          read.job_id,
          [self = shared_from_this(), read](Result<std::vector<store::StoredTransition>> stored) {
            if (self->closing_) return;
            self->client_.on_stored_states(read, std::move(stored));
            self->after_client_change();
          });
    }
    after_client_change();
  }

  /// Asks the store for the next page of history while the client keeps up (one read at a
  /// time; the page goes to the client when it is read).
  void pump_replay() {
    if (closing_) return;
    const auto read = client_.next_page();
    if (!read) return;
    state_->router.history.load_points(
        read->job_id, read->after_step, read->limit,
        [self = shared_from_this(), read = *read](Result<std::vector<store::StoredPoint>> page) {
          self->client_.on_page(read, std::move(page));
          self->after_client_change();
        });
  }

  /// After the client queued something: keep what it is owed bounded, read more history if it
  /// has room, and write.
  void after_client_change() {
    if (closing_ || !check_backlog()) return;
    pump_replay();
    if (!writing_) do_write();
  }

  /// Queues a message of this connection's own (hello, error); they go out before the log.
  void send_own(std::string body) {
    if (closing_) return;
    client_.send_own(std::move(body));
    if (!check_backlog()) return;
    if (!writing_) do_write();
  }

  /// Closes the client with 1008 once more than websocket.send_queue_bytes wait for it.
  /// Returns false if it closed.
  bool check_backlog() {
    if (!client_.over_send_queue()) return true;
    close(websocket::close_code::policy_error, "send queue full", "slow_consumer",
          state_->options.websocket_close_grace);
    return false;
  }

  void do_write() {
    if (closing_) return;
    if (!ws_.is_open()) {
      // Beast is answering the client's close: nothing more goes out, and the log must not
      // wait for this cursor while the teardown runs.
      closing_ = true;
      leave_hub();
      return;
    }
    if (!client_.fill_batch(batch_)) {
      // Nothing live is due: the client has room for more history.
      if (!client_.replaying()) return;
      pump_replay();
      if (closing_ || !client_.fill_batch(batch_)) return;
    }
    writing_ = true;
    ws_.next_layer().write_frames(
        asio::buffer(batch_),
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec) {
      closing_ = true;
      leave_hub();
      return;
    }
    if (closing_) {
      if (close_pending_) start_close();
      return;
    }
    pump_replay();
    do_write();
  }

  /// Begins a close with `code`; the close frame follows any write in flight, and the socket is
  /// cut if the handshake does not finish within `grace`.
  void close(websocket::close_code code, std::string_view reason, std::string_view why,
             std::chrono::milliseconds grace) {
    if (closing_) return;
    closing_ = true;
    leave_hub();
    disconnect_reason_ = std::string(why);
    report_disconnect();  // counted when decided, not when the socket finally goes
    close_reason_ = websocket::close_reason(code, reason);
    client_.close();  // what has not started is dropped; the batch in flight finishes or fails
    close_timer_.expires_after(grace);
    close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) beast::get_lowest_layer(self->ws_).close();
    });
    if (writing_) {
      close_pending_ = true;
    } else {
      start_close();
    }
  }

  void report_disconnect() {
    if (disconnect_reported_ || !accepted_) return;
    disconnect_reported_ = true;
    state_->observer.on_websocket_disconnect(disconnect_reason_);
  }

  void start_close() {
    close_pending_ = false;
    if (!ws_.is_open()) return;  // the client's close arrived first; Beast is answering it
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) {
      self->close_timer_.cancel();
    });
  }

  websocket::stream<FeedStream> ws_;
  std::shared_ptr<ServerState> state_;
  FeedClient client_;
  asio::steady_timer close_timer_;
  beast::flat_buffer read_buffer_;
  std::string batch_;  ///< encoded frames; stays untouched while a write is in flight
  bool accepted_ = false;
  bool live_ = false;
  bool in_hub_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  bool disconnect_reported_ = false;
  websocket::close_reason close_reason_;
  std::string disconnect_reason_ = "error";
};

}  // namespace

void start_websocket_session(beast::tcp_stream stream, Request request,
                             const std::shared_ptr<ServerState>& state) {
  std::make_shared<WebSocketSession>(std::move(stream), state)->run(std::move(request));
}

}  // namespace vapor::http::detail
