#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/job_events.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace vapor::http {

/// One feed message, serialised once for every connection. `body` is a JSON object's text
/// without its opening brace (`"type":"point",...}`), so that each connection can put its own
/// `{"seq":N,` in front.
struct FeedMessage {
  enum class Kind { point, state };
  core::JobId job_id = 0;
  Kind kind = Kind::point;
  std::uint64_t step = 0;  ///< a point's step; for a state change, the job's last step before it
  std::string body;
};

/// A live-feed connection as the hub sees it: a cursor into the hub's log of messages.
class FeedSubscriber {
 public:
  FeedSubscriber() = default;
  FeedSubscriber(const FeedSubscriber&) = delete;
  FeedSubscriber& operator=(const FeedSubscriber&) = delete;
  virtual ~FeedSubscriber() = default;

  /// Messages were appended. Called once per burst of scheduler events, from a handler the hub
  /// posts (never inside the scheduler's step). The subscriber may remove itself here, but must
  /// not add or remove others.
  virtual void on_feed_appended() = 0;

  /// The index of the first message this subscriber has not taken yet; the hub keeps every
  /// message from the smallest such index on.
  [[nodiscard]] virtual std::uint64_t feed_cursor() const = 0;
};

/// Fans the scheduler's events out to the WebSocket connections, lazily: each event is
/// serialised once (only while someone listens) and appended to a log; every connection reads
/// the log from its own cursor when its socket is ready, so publishing costs the same for one
/// subscriber or a thousand. The log is trimmed to the slowest cursor; connections bound how far
/// they fall behind (websocket.send_queue_bytes). Event-loop thread only; subscribers must
/// remove themselves before they are destroyed.
class FeedHub final : public core::JobEventListener {
 public:
  explicit FeedHub(boost::asio::io_context& ioc) : ioc_(ioc) {}

  /// Adds a subscriber whose cursor is end(): it sees what is published from now on.
  void add(FeedSubscriber& subscriber);
  void remove(FeedSubscriber& subscriber);
  [[nodiscard]] std::size_t size() const { return subscribers_.size(); }

  /// Index of the oldest message kept, and one past the newest.
  [[nodiscard]] std::uint64_t begin() const { return first_; }
  [[nodiscard]] std::uint64_t end() const { return first_ + log_.size(); }
  /// The message at `index`, which must lie in [begin(), end()).
  [[nodiscard]] const FeedMessage& at(std::uint64_t index) const {
    return log_[static_cast<std::size_t>(index - first_)].message;
  }
  /// Bytes of the bodies from `index` (in [begin(), end()]) to the end.
  [[nodiscard]] std::uint64_t bytes_from(std::uint64_t index) const {
    return index == end() ? 0 : appended_bytes_ - log_[static_cast<std::size_t>(index - first_)].offset;
  }

  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged& event) override;

  /// Appends one message and schedules the subscribers' wake-up (used by the two above).
  void publish(core::JobId job_id, FeedMessage::Kind kind, std::uint64_t step, std::string body);

 private:
  struct Entry {
    FeedMessage message;
    std::uint64_t offset = 0;  ///< bytes appended before this message
  };

  void notify();
  void trim();

  boost::asio::io_context& ioc_;
  std::vector<FeedSubscriber*> subscribers_;
  std::deque<Entry> log_;
  std::uint64_t first_ = 0;
  std::uint64_t appended_bytes_ = 0;
  bool notify_posted_ = false;
};

/// Turns a serialised JSON object (`{...}`) into a FeedMessage body (drops the opening brace).
[[nodiscard]] std::string feed_body(std::string object_text);

/// Appends one complete, unmasked WebSocket text frame carrying `{"seq":<seq>,` + `body` to
/// `out`: a server's frames need no masking, so they can be encoded once here and written many
/// to a system call.
void append_feed_frame(std::string& out, std::uint64_t seq, std::string_view body);

}  // namespace vapor::http
