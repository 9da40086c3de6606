#include "http/feed_hub.hpp"

#include <boost/json/serialize.hpp>

#include "http/json_codec.hpp"

namespace vapor::http {

std::shared_ptr<const std::string> feed_body(std::string object_text) {
  if (!object_text.empty() && object_text.front() == '{') object_text.erase(0, 1);
  return std::make_shared<const std::string>(std::move(object_text));
}

void FeedHub::add(FeedSubscriber& subscriber) { subscribers_.push_back(&subscriber); }

void FeedHub::remove(FeedSubscriber& subscriber) {
  std::erase(subscribers_, &subscriber);
}

void FeedHub::on_step(const core::StepRecorded& event) {
  if (subscribers_.empty()) return;
  publish(event.job_id, FeedMessage::Kind::point, boost::json::serialize(point_message(event)));
}

void FeedHub::on_state_changed(const core::JobStateChanged& event) {
  if (subscribers_.empty()) return;
  publish(event.job_id, FeedMessage::Kind::state, boost::json::serialize(state_message(event)));
}

void FeedHub::publish(core::JobId job_id, FeedMessage::Kind kind, std::string body) {
  const FeedMessage message{job_id, kind, feed_body(std::move(body))};
  for (auto* subscriber : subscribers_) subscriber->deliver(message);
}

}  // namespace vapor::http
