#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/job_events.hpp"

namespace vapor::http {

/// One feed message, serialised once and shared by every connection that sends it. `body` is a
/// JSON object's text without its opening brace (`"type":"point",...}`), so that each connection
/// can put its own `{"seq":N,` in front without copying it.
struct FeedMessage {
  enum class Kind { point, state };
  core::JobId job_id = 0;
  Kind kind = Kind::point;
  std::shared_ptr<const std::string> body;
};

/// A live-feed connection as the hub sees it.
class FeedSubscriber {
 public:
  FeedSubscriber() = default;
  FeedSubscriber(const FeedSubscriber&) = delete;
  FeedSubscriber& operator=(const FeedSubscriber&) = delete;
  virtual ~FeedSubscriber() = default;

  /// Called on the event loop for every message; the subscriber filters and queues it. It must
  /// not add or remove subscribers from inside this call (defer that with a post).
  virtual void deliver(const FeedMessage& message) = 0;
};

/// Fans the scheduler's events out to the WebSocket connections: each event becomes one
/// FeedMessage, built only when someone listens. Event-loop thread only; subscribers must
/// remove themselves before they are destroyed.
class FeedHub final : public core::JobEventListener {
 public:
  void add(FeedSubscriber& subscriber);
  void remove(FeedSubscriber& subscriber);
  [[nodiscard]] std::size_t size() const { return subscribers_.size(); }

  void on_step(const core::StepRecorded& event) override;
  void on_state_changed(const core::JobStateChanged& event) override;

 private:
  void publish(core::JobId job_id, FeedMessage::Kind kind, std::string body);

  std::vector<FeedSubscriber*> subscribers_;
};

/// Turns a serialised JSON object (`{...}`) into a FeedMessage body (drops the opening brace).
[[nodiscard]] std::shared_ptr<const std::string> feed_body(std::string object_text);

}  // namespace vapor::http
