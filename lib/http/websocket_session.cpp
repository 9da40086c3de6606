// One WebSocket feed client: a hello with every job, then live point and state messages, each
// with a per-connection seq. A subscribe narrows the feed and replays missed points from the
// store, a page at a time as the send queue drains, before that job goes live. The send queue is
// bounded: a client that stops reading is closed with 1008 once it holds more than
// websocket.send_queue_bytes.

#include <array>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/array.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/serialize.hpp>

#include "core/simulator.hpp"
#include "http/detail/server_state.hpp"
#include "http/json_codec.hpp"
#include "http/subscription.hpp"
#include "runtime/scheduler.hpp"
#include "store/sqlite_job_store.hpp"

namespace vapor::http::detail {
namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace asio = boost::asio;

/// How long a client gets to finish the close handshake when the daemon shuts down.
constexpr std::chrono::seconds shutdown_close_grace{1};

class WebSocketSession final : public Connection,
                               public FeedSubscriber,
                               public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(beast::tcp_stream stream, std::shared_ptr<ServerState> state)
      : ws_(std::move(stream)), state_(std::move(state)), close_timer_(ws_.get_executor()) {}

  ~WebSocketSession() override {
    state_->connections.erase(this);
    if (accepted_) {
      state_->hub.remove(*this);
      --state_->websocket_clients;
      state_->observer.on_websocket_clients(state_->websocket_clients);
      report_disconnect();
    }
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
    ws_.text(true);
    ws_.auto_fragment(false);  // one frame per message, however large (the hello lists every job)
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

  void deliver(const FeedMessage& message) override {
    if (closing_ || !live_) return;
    if (!all_jobs_ && !subscribed_.contains(message.job_id)) return;
    if (auto replay = replaying_.find(message.job_id); replay != replaying_.end()) {
      // The replay will read this point from the store; a state change waits until the
      // replay has caught up, so it still follows the job's last point.
      if (message.kind == FeedMessage::Kind::state) replay->second.held_states.push_back(message.body);
      return;
    }
    enqueue(message.body);
  }

 private:
  struct Outgoing {
    std::string prefix;  // {"seq":N,
    std::shared_ptr<const std::string> body;
  };

  void on_accept(beast::error_code ec) {
    if (ec) {
      disconnect_reason_ = "handshake_failed";
      return;
    }
    live_ = true;
    state_->hub.add(*this);
    send_hello();
    do_read();
  }

  void send_hello() {
    boost::json::object hello;
    hello["type"] = "hello";
    hello["server"] = state_->options.server_version;
    boost::json::array jobs;
    for (const auto& [id, job] : state_->router.scheduler.jobs()) jobs.push_back(job_summary(job));
    hello["jobs"] = std::move(jobs);
    enqueue(feed_body(boost::json::serialize(hello)));
  }

  void send_error(const std::string& message) {
    boost::json::object error;
    error["type"] = "error";
    error["message"] = message;
    enqueue(feed_body(boost::json::serialize(error)));
  }

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
    all_jobs_ = subscription.job_ids.empty();
    subscribed_ = std::set<core::JobId>(subscription.job_ids.begin(), subscription.job_ids.end());

    // Everything from here on belongs to the new subscription; the ack marks the boundary.
    boost::json::object ack;
    ack["type"] = "subscribed";
    if (all_jobs_) {
      ack["job_ids"] = nullptr;
    } else {
      ack["job_ids"] = boost::json::value_from(subscription.job_ids);
    }
    if (subscription.since_step) {
      ack["since_step"] = *subscription.since_step;
    } else {
      ack["since_step"] = nullptr;
    }
    enqueue(feed_body(boost::json::serialize(ack)));

    // State changes held by an interrupted replay still reach a job that stays subscribed.
    auto previous = std::move(replaying_);
    replaying_.clear();
    for (auto& [id, replay] : previous) {
      if (!all_jobs_ && !subscribed_.contains(id)) continue;
      for (auto& body : replay.held_states) enqueue(std::move(body));
    }
    if (subscription.since_step) {
      const auto& jobs = state_->router.scheduler.jobs();
      for (const auto& [id, job] : jobs) {
        if (all_jobs_ || subscribed_.contains(id)) replaying_[id].after_step = *subscription.since_step;
      }
    }
    pump_replay();
  }

  /// Reads the next pages of history while the send queue has room; a job whose history has
  /// been read to its newest point goes live.
  void pump_replay() {
    const auto room = state_->options.websocket_send_queue_bytes / 2;
    while (!closing_ && !replaying_.empty() && queued_bytes_ < room) {
      auto it = replaying_.begin();
      const auto job_id = it->first;
      auto page = state_->router.store.load_points(job_id, it->second.after_step,
                                                   state_->options.websocket_replay_page);
      if (!page) {
        send_error("replay of job " + std::to_string(job_id) + " failed: " + page.error().message);
        replaying_.erase(it);
        continue;
      }
      const runtime::Job* job = state_->router.scheduler.find(job_id);
      bool filled = false;
      for (const auto& point : *page) {
        if (queued_bytes_ >= room) {
          filled = true;  // continue from it->second.after_step when the queue drains
          break;
        }
        core::StepRecorded event;
        event.job_id = job_id;
        event.step = point.step;
        event.epoch = point.epoch;
        event.loss = point.loss;
        event.accuracy = point.accuracy;
        const auto total = job ? job->spec.total_steps() : 0;
        event.progress =
            total == 0 ? 0.0 : static_cast<double>(point.step) / static_cast<double>(total);
        event.ts = point.ts;
        auto message = point_message(event);
        message["replay"] = true;
        enqueue(feed_body(boost::json::serialize(message)));
        it->second.after_step = point.step;
      }
      if (!filled && page->size() < state_->options.websocket_replay_page) {
        // Caught up: every point so far is sent (the store holds unflushed ones too). Go live.
        auto held = std::move(it->second.held_states);
        replaying_.erase(it);
        for (auto& body : held) enqueue(std::move(body));
      }
    }
  }

  void enqueue(std::shared_ptr<const std::string> body) {
    if (closing_) return;
    Outgoing outgoing{"{\"seq\":" + std::to_string(next_seq_++) + ",", std::move(body)};
    queued_bytes_ += outgoing.prefix.size() + outgoing.body->size();
    queue_.push_back(std::move(outgoing));
    // One message alone (a large hello) never counts against the client.
    if (queued_bytes_ > state_->options.websocket_send_queue_bytes && queue_.size() > 1) {
      // A client that does not read must not hold the others back or grow without bound.
      close(websocket::close_code::policy_error, "send queue full", "slow_consumer",
            state_->options.websocket_close_grace);
      return;
    }
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    const auto& front = queue_.front();
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(front.prefix),
                                                     asio::buffer(*front.body)};
    ws_.async_write(buffers, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    const auto& front = queue_.front();
    queued_bytes_ -= front.prefix.size() + front.body->size();
    queue_.pop_front();
    if (ec) {
      closing_ = true;
      return;
    }
    if (closing_) {
      if (close_pending_) start_close();
      return;
    }
    pump_replay();
    if (!queue_.empty() && !writing_) do_write();
  }

  /// Begins a close with `code`; the close frame follows any write in flight, and the socket is
  /// cut if the handshake does not finish within `grace`.
  void close(websocket::close_code code, std::string_view reason, std::string_view why,
             std::chrono::milliseconds grace) {
    if (closing_) return;
    closing_ = true;
    disconnect_reason_ = std::string(why);
    report_disconnect();  // counted when decided, not when the socket finally goes
    close_reason_ = websocket::close_reason(code, reason);
    // Drop what has not been started; the write in flight (front) finishes or fails.
    while (queue_.size() > (writing_ ? 1U : 0U)) {
      queued_bytes_ -= queue_.back().prefix.size() + queue_.back().body->size();
      queue_.pop_back();
    }
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
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) {
      self->close_timer_.cancel();
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<ServerState> state_;
  asio::steady_timer close_timer_;
  beast::flat_buffer read_buffer_;
  std::deque<Outgoing> queue_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t next_seq_ = 0;
  bool accepted_ = false;
  bool live_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  bool disconnect_reported_ = false;
  bool all_jobs_ = true;
  std::set<core::JobId> subscribed_;
  struct Replay {
    std::uint64_t after_step = 0;  ///< last step sent
    std::vector<std::shared_ptr<const std::string>> held_states;
  };
  std::map<core::JobId, Replay> replaying_;
  websocket::close_reason close_reason_;
  std::string disconnect_reason_ = "error";
};

}  // namespace

void start_websocket_session(beast::tcp_stream stream, Request request,
                             const std::shared_ptr<ServerState>& state) {
  std::make_shared<WebSocketSession>(std::move(stream), state)->run(std::move(request));
}

}  // namespace vapor::http::detail
