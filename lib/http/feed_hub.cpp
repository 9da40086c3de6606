#include "http/feed_hub.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>

#include "http/json_codec.hpp"

namespace vapor::http {

std::string feed_body(std::string object_text) {
  if (!object_text.empty() && object_text.front() == '{') object_text.erase(0, 1);
  return object_text;
}

void append_feed_frame(std::string& out, std::uint64_t seq, std::string_view body) {
  static constexpr std::string_view seq_open = "{\"seq\":";
  std::array<char, std::numeric_limits<std::uint64_t>::digits10 + 1> digits{};
  const auto seq_end = std::to_chars(digits.data(), digits.data() + digits.size(), seq).ptr;
  const auto seq_digits = static_cast<std::size_t>(seq_end - digits.data());
  const std::uint64_t length = seq_open.size() + seq_digits + 1 + body.size();

  // RFC 6455 section 5.2: FIN + text opcode, then the payload length in 7, 7+16 or 7+64 bits,
  // network byte order; the mask bit stays clear (server to client).
  out.push_back(static_cast<char>(0x81));
  if (length < 126) {
    out.push_back(static_cast<char>(length));
  } else {
    const int length_bytes = length <= 0xFFFF ? 2 : 8;
    out.push_back(static_cast<char>(length_bytes == 2 ? 126 : 127));
    for (int shift = (length_bytes - 1) * 8; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((length >> shift) & 0xFF));
    }
  }
  out.append(seq_open);
  out.append(digits.data(), seq_digits);
  out.push_back(',');
  out.append(body);
}

void FeedHub::add(FeedSubscriber& subscriber) { subscribers_.push_back(&subscriber); }

void FeedHub::remove(FeedSubscriber& subscriber) {
  std::erase(subscribers_, &subscriber);
  trim();
}

void FeedHub::on_step(const core::StepRecorded& event) {
  if (subscribers_.empty()) return;
  publish(event.job_id, FeedMessage::Kind::point, event.step,
          feed_body(boost::json::serialize(point_message(event))));
}

void FeedHub::on_state_changed(const core::JobStateChanged& event) {
  if (subscribers_.empty()) return;
  publish(event.job_id, FeedMessage::Kind::state, event.step,
          feed_body(boost::json::serialize(state_message(event))));
}

void FeedHub::publish(core::JobId job_id, FeedMessage::Kind kind, std::uint64_t step,
                      std::string body) {
  const auto size = body.size();
  log_.push_back({{job_id, kind, step, std::move(body)}, appended_bytes_});
  appended_bytes_ += size;
  if (notify_posted_) return;
  // One wake-up per burst: a scheduler step that records 4,096 points costs each subscriber one
  // call, not 4,096.
  notify_posted_ = true;
  boost::asio::post(ioc_, [this] { notify(); });
}

void FeedHub::notify() {
  notify_posted_ = false;
  // A subscriber may remove itself while it is called (a slow consumer closing).
  for (std::size_t i = 0; i < subscribers_.size();) {
    auto* subscriber = subscribers_[i];
    subscriber->on_feed_appended();
    if (i < subscribers_.size() && subscribers_[i] == subscriber) ++i;
  }
  trim();
}

void FeedHub::trim() {
  auto keep_from = end();
  for (const auto* subscriber : subscribers_) keep_from = std::min(keep_from, subscriber->feed_cursor());
  while (first_ < keep_from) {
    log_.pop_front();
    ++first_;
  }
}

}  // namespace vapor::http
