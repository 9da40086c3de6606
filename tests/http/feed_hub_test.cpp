// The feed hub's log and the frames the sessions encode from it: one wake-up per burst of
// events, the log kept only as far back as the slowest connection, and WebSocket frames whose
// headers follow RFC 6455 at every payload-length boundary.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value_to.hpp>

#include <string>
#include <vector>

#include "http/feed_hub.hpp"
#include "support/job_specs.hpp"

namespace vapor::testing {
namespace {

/// A subscriber that reads nothing until told to, and counts its wake-ups.
class ParkedSubscriber final : public http::FeedSubscriber {
 public:
  explicit ParkedSubscriber(std::uint64_t cursor) : cursor_(cursor) {}
  void on_feed_appended() override { ++wakeups; }
  [[nodiscard]] std::uint64_t feed_cursor() const override { return cursor_; }
  void take_until(std::uint64_t index) { cursor_ = index; }
  int wakeups = 0;

 private:
  std::uint64_t cursor_;
};

core::StepRecorded step(core::JobId job, std::uint64_t n) { return testing::step_recorded(job, n); }

TEST(FeedHubTest, NothingIsSerialisedWhileNobodyListens) {
  boost::asio::io_context ioc;
  http::FeedHub hub(ioc);
  hub.on_step(step(1, 1));
  EXPECT_EQ(hub.end(), 0u);
  EXPECT_EQ(ioc.poll(), 0u) << "no wake-up is posted for nobody";
}

TEST(FeedHubTest, ABurstOfEventsWakesEachSubscriberOnce) {
  boost::asio::io_context ioc;
  http::FeedHub hub(ioc);
  ParkedSubscriber first(hub.end());
  ParkedSubscriber second(hub.end());
  hub.add(first);
  hub.add(second);
  for (std::uint64_t n = 1; n <= 4096; ++n) hub.on_step(step(1, n));
  ioc.poll();
  EXPECT_EQ(first.wakeups, 1);
  EXPECT_EQ(second.wakeups, 1);
  EXPECT_EQ(hub.end(), 4096u);
  const auto& message = hub.at(4095);
  EXPECT_EQ(message.job_id, 1);
  EXPECT_EQ(message.kind, http::FeedMessage::Kind::point);
  const auto parsed = boost::json::parse("{" + message.body).as_object();
  EXPECT_EQ(parsed.at("step").as_int64(), 4096);
}

TEST(FeedHubTest, TheLogIsKeptBackToTheSlowestCursorAndNoFurther) {
  boost::asio::io_context ioc;
  http::FeedHub hub(ioc);
  ParkedSubscriber fast(hub.end());
  ParkedSubscriber slow(hub.end());
  hub.add(fast);
  hub.add(slow);
  for (std::uint64_t n = 1; n <= 100; ++n) hub.on_step(step(7, n));
  const auto all_bytes = hub.bytes_from(0);
  EXPECT_GT(all_bytes, 100u * 20);
  EXPECT_EQ(hub.bytes_from(hub.end()), 0u);

  fast.take_until(100);
  slow.take_until(40);
  hub.on_step(step(7, 101));
  ioc.poll();  // the wake-up trims
  EXPECT_EQ(hub.begin(), 40u);
  EXPECT_EQ(hub.end(), 101u);
  EXPECT_EQ(boost::json::parse("{" + hub.at(40).body).as_object().at("step").as_int64(), 41);
  EXPECT_LT(hub.bytes_from(40), all_bytes);

  // The slow one leaves: the log keeps only what the fast one has not read.
  hub.remove(slow);
  EXPECT_EQ(hub.begin(), 100u);
  hub.remove(fast);
  EXPECT_EQ(hub.begin(), hub.end()) << "nobody listens: nothing is kept";
}

TEST(FeedHubTest, StateChangesAreMessagesOfTheirOwnKind) {
  boost::asio::io_context ioc;
  http::FeedHub hub(ioc);
  ParkedSubscriber subscriber(hub.end());
  hub.add(subscriber);
  core::JobStateChanged change;
  change.job_id = 3;
  change.from = core::JobState::running;
  change.to = core::JobState::failed;
  change.reason = "fault_injected";
  hub.on_state_changed(change);
  ASSERT_EQ(hub.end(), 1u);
  EXPECT_EQ(hub.at(0).kind, http::FeedMessage::Kind::state);
  const auto parsed = boost::json::parse("{" + hub.at(0).body).as_object();
  EXPECT_EQ(parsed.at("type").as_string(), "state");
  EXPECT_EQ(parsed.at("to").as_string(), "failed");
  EXPECT_EQ(parsed.at("reason").as_string(), "fault_injected");
}

/// Splits one encoded frame into (header bytes, payload); checks FIN, opcode and mask bit.
std::pair<std::vector<unsigned>, std::string> split_frame(const std::string& frame) {
  EXPECT_GE(frame.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(frame[0]), 0x81u) << "FIN + text opcode";
  EXPECT_EQ(static_cast<unsigned char>(frame[1]) & 0x80u, 0u) << "server frames are unmasked";
  const unsigned short_length = static_cast<unsigned char>(frame[1]) & 0x7Fu;
  const std::size_t header = short_length < 126 ? 2 : short_length == 126 ? 4 : 10;
  std::vector<unsigned> bytes;
  for (std::size_t i = 0; i < header; ++i) bytes.push_back(static_cast<unsigned char>(frame[i]));
  return {bytes, frame.substr(header)};
}

TEST(FeedFrameTest, HeadersFollowRfc6455AtEveryLengthBoundary) {
  const std::string prefix = "{\"seq\":42,";
  struct Case {
    std::size_t payload;
    std::vector<unsigned> header;
  };
  const std::vector<Case> cases = {
      {prefix.size(), {0x81, static_cast<unsigned>(prefix.size())}},
      {125, {0x81, 125}},
      {126, {0x81, 126, 0x00, 0x7E}},
      {65535, {0x81, 126, 0xFF, 0xFF}},
      {65536, {0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
      {1'000'000, {0x81, 127, 0, 0, 0, 0, 0, 0x0F, 0x42, 0x40}},
  };
  for (const auto& c : cases) {
    const std::string body(c.payload - prefix.size(), 'x');
    std::string out = "before";
    http::append_feed_frame(out, 42, body);
    ASSERT_EQ(out.substr(0, 6), "before") << "frames are appended";
    const auto [header, payload] = split_frame(out.substr(6));
    EXPECT_EQ(header, c.header) << "payload of " << c.payload << " bytes";
    EXPECT_EQ(payload.size(), c.payload);
    EXPECT_EQ(payload, prefix + body);
  }
}

TEST(FeedFrameTest, SeqIsWrittenInFullForEveryWidth) {
  for (const std::uint64_t seq : {0ULL, 9ULL, 10ULL, 18446744073709551615ULL}) {
    std::string out;
    http::append_feed_frame(out, seq, "\"type\":\"hello\"}");
    const auto payload = split_frame(out).second;
    const auto parsed = boost::json::parse(payload).as_object();
    EXPECT_EQ(boost::json::value_to<std::uint64_t>(parsed.at("seq")), seq);
    EXPECT_EQ(parsed.at("type").as_string(), "hello");
  }
}

}  // namespace
}  // namespace vapor::testing
