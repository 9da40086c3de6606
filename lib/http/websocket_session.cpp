// One WebSocket feed client: a hello with every job, then live point and state messages, each
// with a per-connection seq. A subscribe narrows the feed and replays missed points from the
// store, a page at a time as the connection drains (each page read on the store thread), before
// that job goes live.
//
// Live messages are not queued per connection: the session reads the hub's log from its own
// cursor whenever its socket is ready, encodes every message due into one buffer of WebSocket
// frames and writes the batch with one call. What it owes a client is bounded: once more than
// websocket.send_queue_bytes wait for a client that has stopped reading, it is closed with 1008.

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/serialize.hpp>

#include "http/detail/feed_stream.hpp"
#include "http/detail/server_state.hpp"
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
        close_timer_(ws_.get_executor()) {}

  ~WebSocketSession() override {
    state_->connections.erase(this);
    if (accepted_) {
      leave_hub();
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

  /// While a page is being read, the log is kept from where the read began: what the cursor
  /// skips for the replaying job meanwhile is not in the page, and goes out when it goes live.
  [[nodiscard]] std::uint64_t feed_cursor() const override {
    return page_log_end_ ? std::min(cursor_, *page_log_end_) : cursor_;
  }

 private:
  struct HeldState {
    std::uint64_t step = 0;  ///< the job's last step before the change
    std::string body;
    std::uint64_t index = 0;  ///< its place in the hub's log (read from the store: 0)
    bool stored = false;      ///< read from the store (it happened before the subscribe)
  };
  struct Replay {
    std::uint64_t after_step = 0;        ///< last step sent
    std::vector<HeldState> held_states;  ///< in the order they happened
    std::uint64_t harvest_from = 0;      ///< log index from which its state changes are taken
    bool history_states_read = false;    ///< its stored state changes are in held_states
  };

  void on_accept(beast::error_code ec) {
    if (ec) {
      disconnect_reason_ = "handshake_failed";
      return;
    }
    live_ = true;
    cursor_ = state_->hub.end();
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

  static std::string error_body(const std::string& message) {
    boost::json::object error;
    error["type"] = "error";
    error["message"] = message;
    return feed_body(boost::json::serialize(error));
  }

  void send_error(const std::string& message) { send_own(error_body(message)); }

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
    harvest_states();  // the replays in progress take what the log holds for them so far
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
    if (!subscription.since.empty()) {
      boost::json::object since;
      for (const auto& [id, step] : subscription.since) since[std::to_string(id)] = step;
      ack["since"] = std::move(since);
    }
    send_own(feed_body(boost::json::serialize(ack)), false);

    auto previous = std::move(replaying_);
    replaying_.clear();
    ++subscription_generation_;  // a page still being read belongs to the old subscription
    if (subscription.since_step || !subscription.since.empty()) {
      for (const auto& [id, job] : state_->router.scheduler.jobs()) {
        const auto after = subscription.replay_after(id);
        if (after && wants(id)) replaying_[id] = Replay{*after, {}, cursor_};
      }
    }
    // State changes held by an interrupted replay still reach a job that stays subscribed: in
    // step order within its new replay, or now if it goes straight to live.
    for (auto& [id, replay] : previous) {
      if (!wants(id)) continue;
      if (auto again = replaying_.find(id); again != replaying_.end()) {
        // Those read from the store are read again for the new replay's first step.
        for (auto& held : replay.held_states) {
          if (!held.stored) again->second.held_states.push_back(std::move(held));
        }
        again->second.harvest_from = harvested_to_;  // harvested up to here already
      } else {
        for (auto& held : replay.held_states) send_own(std::move(held.body), false);
      }
    }
    harvested_to_ = cursor_;
    read_stored_states();
    pump_replay();
    if (!writing_) do_write();
  }

  /// Asks the store for each replaying job's state changes, so that they are replayed too, in
  /// step order among its points. The read sees every change recorded before it was asked for:
  /// those the log still holds from where the job's harvest starts (and those carried over from
  /// an interrupted replay) reach the client from there, so the read's last `known` are dropped.
  void read_stored_states() {
    const auto& hub = state_->hub;
    for (auto& [id, replay] : replaying_) {
      if (replay.history_states_read) continue;
      std::size_t known = replay.held_states.size();
      for (auto index = std::max(replay.harvest_from, hub.begin()); index < hub.end(); ++index) {
        const auto& message = hub.at(index);
        if (message.kind == FeedMessage::Kind::state && message.job_id == id) ++known;
      }
      state_->router.history.load_transitions(
          id, [self = shared_from_this(), id = id, known, generation = subscription_generation_](
                  Result<std::vector<store::StoredTransition>> stored) {
            self->on_stored_states(generation, id, known, std::move(stored));
          });
    }
  }

  void on_stored_states(std::uint64_t generation, core::JobId job_id, std::size_t known,
                        Result<std::vector<store::StoredTransition>> stored) {
    auto it = replaying_.find(job_id);
    if (closing_ || generation != subscription_generation_ || it == replaying_.end()) return;
    Replay& replay = it->second;
    replay.history_states_read = true;
    if (!stored) {
      send_own(error_body("replay of job " + std::to_string(job_id) + "'s state changes failed: " +
                          stored.error().message),
               false);
    } else {
      stored->resize(stored->size() - std::min(known, stored->size()));
      std::vector<HeldState> earlier;
      for (const auto& transition : *stored) {
        // A change after the replay's first step; one stored before steps were kept has no place.
        if (!transition.step || *transition.step < replay.after_step) continue;
        auto message = state_message({job_id, transition.from, transition.to, transition.reason,
                                      transition.ts, *transition.step});
        message["replay"] = true;
        earlier.push_back(
            {*transition.step, feed_body(boost::json::serialize(message)), 0, true});
      }
      replay.held_states.insert(replay.held_states.begin(),
                                std::make_move_iterator(earlier.begin()),
                                std::make_move_iterator(earlier.end()));
    }
    pump_replay();
    if (!writing_) do_write();
  }

  [[nodiscard]] bool wants(core::JobId id) const { return all_jobs_ || subscribed_.contains(id); }

  /// Bytes waiting for this client: its own messages and the hub's log from its cursor.
  [[nodiscard]] std::uint64_t backlog_bytes() const {
    return own_bytes_ + state_->hub.bytes_from(cursor_);
  }

  /// Moves the state changes of replaying jobs out of the hub's log (from harvested_to_ on) into
  /// their replay, which sends each after the point it followed. Runs before anything that
  /// moves the cursor, so that the cursor never passes a state change not yet taken.
  void harvest_states() {
    const auto& hub = state_->hub;
    if (closing_) return;
    if (!replaying_.empty()) {
      for (auto index = std::max(harvested_to_, hub.begin()); index < hub.end(); ++index) {
        const auto& message = hub.at(index);
        if (message.kind != FeedMessage::Kind::state) continue;
        auto replay = replaying_.find(message.job_id);
        if (replay == replaying_.end() || index < replay->second.harvest_from) continue;
        replay->second.held_states.push_back({message.step, message.body, index, false});
      }
    }
    harvested_to_ = hub.end();
  }

  /// Asks the store for the next page of history while the client keeps up (one read at a
  /// time; the page is sent by `on_page`).
  void pump_replay() {
    harvest_states();
    const auto room = state_->options.websocket_send_queue_bytes / 2;
    if (closing_ || page_log_end_ || replaying_.empty() || backlog_bytes() >= room) return;
    const auto& [job_id, replay] = *replaying_.begin();
    if (!replay.history_states_read) return;  // its stored state changes come first
    // The page holds every point the log held when it was asked for, and none after.
    page_log_end_ = state_->hub.end();
    state_->router.history.load_points(
        job_id, replay.after_step, state_->options.websocket_replay_page,
        [self = shared_from_this(), job_id = job_id, generation = subscription_generation_](
            Result<std::vector<store::StoredPoint>> page) {
          self->on_page(generation, job_id, std::move(page));
        });
  }

  /// Sends a page of a job's history; a short page means the job's replay has reached the
  /// point where the read began, and the job goes live from there.
  void on_page(std::uint64_t generation, core::JobId job_id,
               Result<std::vector<store::StoredPoint>> page) {
    const std::uint64_t log_end = *page_log_end_;
    page_log_end_.reset();
    auto it = replaying_.find(job_id);
    if (closing_ || generation != subscription_generation_ || it == replaying_.end()) {
      // A new subscription (or a close) since the read was asked for: the page is stale.
      pump_replay();
      if (!writing_) do_write();
      return;
    }
    harvest_states();
    if (!page) {
      send_own(error_body("replay of job " + std::to_string(job_id) + " failed: " +
                          page.error().message),
               false);
      go_live(it, log_end);  // what the replay held still goes out; from here on, live points
    } else {
      const auto room = state_->options.websocket_send_queue_bytes / 2;
      const runtime::Job* job = state_->router.scheduler.find(job_id);
      auto& held = it->second.held_states;
      bool filled = false;
      for (auto& point : *page) {
        if (closing_) return;
        if (backlog_bytes() >= room) {
          filled = true;  // continue from it->second.after_step when the client has read more
          break;
        }
        // A state change the job went through before this step comes first.
        std::size_t due_states = 0;
        while (due_states < held.size() && held[due_states].step < point.step) {
          send_own(std::move(held[due_states++].body), false);
        }
        held.erase(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(due_states));
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
        event.scalars = std::move(point.scalars);
        auto message = point_message(event);
        message["replay"] = true;
        send_own(feed_body(boost::json::serialize(message)), false);
        it->second.after_step = point.step;
      }
      if (!filled && page->size() < state_->options.websocket_replay_page) go_live(it, log_end);
    }
    if (closing_) return;
    pump_replay();
    if (!writing_) do_write();
  }

  /// A replay has read the job's history up to the log's index `log_end`: the job's messages
  /// before it are in what was replayed (its state changes were harvested and follow the last
  /// replayed point), those the cursor has passed since go out now in log order, and the rest
  /// go out live.
  void go_live(std::map<core::JobId, Replay>::iterator replay, std::uint64_t log_end) {
    harvest_states();
    const auto job_id = replay->first;
    auto held = std::move(replay->second.held_states);
    const auto replayed_to = replay->second.after_step;
    replaying_.erase(replay);
    for (auto& state : held) {
      if (state.stored || state.index < log_end) send_own(std::move(state.body), false);
    }
    // What follows for this job is live: the client may stop treating it as history.
    send_own(feed_body(boost::json::serialize(boost::json::object{
                 {"type", "caught_up"}, {"job_id", job_id}, {"step", replayed_to}})),
             false);
    const auto& hub = state_->hub;
    for (auto index = std::max(log_end, hub.begin()); index < cursor_; ++index) {
      const auto& message = hub.at(index);
      if (message.job_id == job_id && wants(job_id)) send_own(message.body, false);
    }
    // Messages the cursor has yet to reach go out live from the read's end on, not before.
    live_from_[job_id] = std::max(cursor_, log_end);
  }

  /// Queues a message of this connection's own (hello, ack, error, replayed point); they go out
  /// before the hub's log.
  void send_own(std::string body, bool write_now = true) {
    if (closing_) return;
    own_bytes_ += body.size();
    own_.push_back(std::move(body));
    if (!check_backlog()) return;
    if (write_now && !writing_) do_write();
  }

  /// Closes the client with 1008 once more than websocket.send_queue_bytes wait for it (one
  /// message alone, such as a large hello, never counts against it). Returns false if it closed.
  bool check_backlog() {
    const auto limit = state_->options.websocket_send_queue_bytes;
    if (backlog_bytes() <= limit) return true;
    // The log holds every job's messages, and this client's cursor holds all of them in memory.
    // Copy out the ones it is owed and let go of the rest, so that a client following a few
    // jobs never pins the whole log; then judge it by what it is owed.
    harvest_states();
    const auto& hub = state_->hub;
    for (; cursor_ < hub.end(); ++cursor_) {
      const auto& message = hub.at(cursor_);
      if (!due(cursor_, message)) continue;
      own_bytes_ += message.body.size();
      own_.push_back(message.body);
    }
    if (own_bytes_ <= limit || own_.size() <= 1) return true;
    close(websocket::close_code::policy_error, "send queue full", "slow_consumer",
          state_->options.websocket_close_grace);
    return false;
  }

  /// Whether the log's message at `index` goes to this client when its turn comes: it follows
  /// the subscription; a job still replaying gets its points from the store (and its state
  /// changes were harvested), and so does a replayed job for the log up to where it went live.
  bool due(std::uint64_t index, const FeedMessage& message) {
    if (!wants(message.job_id)) return false;
    if (replaying_.contains(message.job_id)) return false;
    if (auto live = live_from_.find(message.job_id); live != live_from_.end()) {
      if (index < live->second) return false;
      live_from_.erase(live);
    }
    return true;
  }

  /// Encodes the next batch (own messages first, then the hub's log from the cursor) into
  /// batch_; returns false when nothing is due.
  bool fill_batch() {
    harvest_states();
    batch_.clear();
    while (!own_.empty() && (batch_.empty() || batch_.size() < batch_bytes)) {
      own_bytes_ -= own_.front().size();
      append_feed_frame(batch_, next_seq_++, own_.front());
      own_.pop_front();
    }
    const auto& hub = state_->hub;
    while (cursor_ < hub.end() && batch_.size() < batch_bytes) {
      const auto index = cursor_++;
      const auto& message = hub.at(index);
      if (due(index, message)) append_feed_frame(batch_, next_seq_++, message.body);
    }
    return !batch_.empty();
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
    if (!fill_batch()) {
      // Nothing live is due: the client has room for more history.
      if (replaying_.empty()) return;
      pump_replay();
      if (closing_ || !fill_batch()) return;
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
    own_.clear();  // what has not been started is dropped; the batch in flight finishes or fails
    own_bytes_ = 0;
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
  asio::steady_timer close_timer_;
  beast::flat_buffer read_buffer_;
  std::deque<std::string> own_;  ///< bodies of this connection's own messages, oldest first
  std::uint64_t own_bytes_ = 0;
  std::uint64_t cursor_ = 0;     ///< next index in the hub's log
  std::string batch_;            ///< encoded frames; stays untouched while a write is in flight
  std::uint64_t next_seq_ = 0;
  bool accepted_ = false;
  bool live_ = false;
  bool in_hub_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  bool disconnect_reported_ = false;
  bool all_jobs_ = true;
  std::set<core::JobId> subscribed_;
  std::map<core::JobId, Replay> replaying_;
  std::map<core::JobId, std::uint64_t> live_from_;  ///< log index where a replayed job went live
  std::uint64_t harvested_to_ = 0;  ///< log index up to which replays took their state changes
  std::optional<std::uint64_t> page_log_end_;  ///< while a page is read: the log's end then
  std::uint64_t subscription_generation_ = 0;  ///< pages of an earlier subscription are dropped
  websocket::close_reason close_reason_;
  std::string disconnect_reason_ = "error";
};

}  // namespace

void start_websocket_session(beast::tcp_stream stream, Request request,
                             const std::shared_ptr<ServerState>& state) {
  std::make_shared<WebSocketSession>(std::move(stream), state)->run(std::move(request));
}

}  // namespace vapor::http::detail
