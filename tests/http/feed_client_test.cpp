// The feed client without a socket (http/feed_client.hpp): a subscribe's replay takes the
// store's pages and state changes the test hands it, and the frames it encodes carry history
// then live messages with no gap, no duplicate and state changes in step order; a client that
// stops reading is found over its send queue.

#include "http/feed_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "support/job_specs.hpp"

namespace vapor::http {
namespace {

using core::JobState;

/// Keeps the hub's log from the client's cursor on, as its session does.
class ClientCursor final : public FeedSubscriber {
 public:
  explicit ClientCursor(const FeedClient& client) : client_(client) {}
  void on_feed_appended() override {}
  [[nodiscard]] std::uint64_t feed_cursor() const override { return client_.cursor(); }

 private:
  const FeedClient& client_;
};

/// The JSON messages of a buffer of unmasked WebSocket text frames.
std::vector<boost::json::object> decode_frames(std::string_view frames) {
  std::vector<boost::json::object> messages;
  std::size_t at = 0;
  while (at < frames.size()) {
    std::uint64_t length = static_cast<unsigned char>(frames[at + 1]) & 0x7f;
    std::size_t header = 2;
    if (length == 126 || length == 127) {
      const std::size_t bytes = length == 126 ? 2 : 8;
      length = 0;
      for (std::size_t i = 0; i < bytes; ++i) {
        length = (length << 8) | static_cast<unsigned char>(frames[at + 2 + i]);
      }
      header += bytes;
    }
    messages.push_back(
        boost::json::parse(frames.substr(at + header, static_cast<std::size_t>(length)))
            .as_object());
    at += header + static_cast<std::size_t>(length);
  }
  return messages;
}

store::StoredPoint stored_point(core::JobId job, std::uint64_t step) {
  store::StoredPoint point;
  point.job_id = job;
  point.step = step;
  point.epoch = 1;
  point.loss = 1.0 / static_cast<double>(step);
  point.accuracy = 0.5;
  return point;
}

core::StepRecorded live_point(core::JobId job, std::uint64_t step) {
  return testing::step_recorded(job, step);
}

/// "point 3", "state failed", "caught_up 5", "subscribed": what the client was sent, in order.
std::vector<std::string> kinds(const std::vector<boost::json::object>& messages) {
  std::vector<std::string> out;
  for (const auto& message : messages) {
    const std::string type(message.at("type").as_string());
    if (type == "point") {
      out.push_back("point " + std::to_string(message.at("step").as_int64()));
    } else if (type == "state") {
      out.push_back("state " + std::string(message.at("to").as_string()));
    } else if (type == "caught_up") {
      out.push_back("caught_up " + std::to_string(message.at("step").as_int64()));
    } else {
      out.push_back(type);
    }
  }
  return out;
}

class FeedClientTest : public ::testing::Test {
 protected:
  FeedClientTest() : scheduler_({4, std::chrono::seconds(60), 100}, clock_), hub_(ioc_) {
    core::JobSpec spec;
    spec.name = "history";
    spec.epochs = 1;
    spec.steps_per_epoch = 100;
    spec.start = core::StartMode::manual;  // its events come from the test
    EXPECT_TRUE(scheduler_.add_job(1, spec, clock_.wall_now()));
  }

  FeedClient make_client(std::uint64_t send_queue_bytes = 1 << 20) {
    return FeedClient(hub_, scheduler_, {send_queue_bytes, 5, 256 * 1024});
  }

  /// Everything the client has queued, as messages.
  static std::vector<boost::json::object> drain(FeedClient& client) {
    std::vector<boost::json::object> messages;
    std::string frames;
    while (client.fill_batch(frames)) {
      for (auto& message : decode_frames(frames)) messages.push_back(std::move(message));
    }
    return messages;
  }

  runtime::ManualClock clock_;
  runtime::Scheduler scheduler_;
  boost::asio::io_context ioc_;
  FeedHub hub_;
};

TEST_F(FeedClientTest, AReplayHandsOverToTheLiveLogWithNoGapAndNoDuplicate) {
  FeedClient client = make_client();
  ClientCursor cursor(client);
  hub_.add(cursor);
  client.start();
  hub_.on_step(live_point(1, 7));  // published before the subscribe: the store's pages hold it

  Subscription subscription;
  subscription.since_step = 0;
  const auto reads = client.subscribe(subscription);
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_FALSE(client.next_page()) << "the stored state changes are read first";
  client.on_stored_states(reads[0], std::vector<store::StoredTransition>{});

  // Two pages of five, then an empty one (the history ends at 10); step 11 is published while
  // that last read runs.
  std::vector<std::uint64_t> from_store;
  for (std::uint64_t first : {1u, 6u}) {
    const auto page = client.next_page();
    ASSERT_TRUE(page);
    EXPECT_EQ(page->after_step, first - 1);
    std::vector<store::StoredPoint> points;
    for (std::uint64_t step = first; step < first + 5; ++step) {
      points.push_back(stored_point(1, step));
    }
    client.on_page(*page, points);
  }
  const auto last = client.next_page();
  ASSERT_TRUE(last);
  hub_.on_step(live_point(1, 11));  // after the read began: not in it, so it goes out live
  EXPECT_EQ(last->after_step, 10u);
  client.on_page(*last, std::vector<store::StoredPoint>{});
  EXPECT_FALSE(client.replaying());
  hub_.on_step(live_point(1, 12));

  const auto messages = drain(client);
  std::vector<std::string> expected{"subscribed"};
  for (int step = 1; step <= 10; ++step) expected.push_back("point " + std::to_string(step));
  expected.insert(expected.end(), {"caught_up 10", "point 11", "point 12"});
  EXPECT_EQ(kinds(messages), expected);
  for (std::size_t i = 1; i <= 10; ++i) EXPECT_TRUE(messages[i].at("replay").as_bool());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(messages[i].at("seq").as_int64(), static_cast<std::int64_t>(i)) << "in order";
  }
  hub_.remove(cursor);
}

TEST_F(FeedClientTest, StoredAndHeldStateChangesComeInStepOrderAndNoneTwice) {
  FeedClient client = make_client();
  ClientCursor cursor(client);
  hub_.add(cursor);
  client.start();
  const auto change = [](JobState from, JobState to, std::uint64_t step, std::string reason) {
    return core::JobStateChanged{1, from, to, std::move(reason), {}, step};
  };
  // Published before the subscribe and not yet sent: the store's read holds it too.
  hub_.on_state_changed(change(JobState::queued, JobState::running, 0, ""));

  Subscription subscription;
  subscription.since_step = 0;
  const auto reads = client.subscribe(subscription);
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].known, 1u) << "the log still holds the start";
  // A change during the replay, after step 3: held until its place among the points.
  hub_.on_state_changed(change(JobState::running, JobState::failed, 3, "crashed"));
  std::vector<store::StoredTransition> stored(1);
  stored[0] = {1, JobState::queued, JobState::running, "", {}, 0};
  client.on_stored_states(reads[0], stored);
  const auto page = client.next_page();
  ASSERT_TRUE(page);
  client.on_page(*page, std::vector<store::StoredPoint>{stored_point(1, 1), stored_point(1, 2),
                                                       stored_point(1, 3)});

  EXPECT_EQ(kinds(drain(client)),
            (std::vector<std::string>{"subscribed", "state running", "point 1", "point 2",
                                      "point 3", "state failed", "caught_up 3"}));
  hub_.remove(cursor);
}

TEST_F(FeedClientTest, AClientThatStopsReadingIsOverItsSendQueue) {
  FeedClient client = make_client(4096);
  ClientCursor cursor(client);
  hub_.add(cursor);
  client.start();
  hub_.on_step(live_point(1, 1));
  EXPECT_FALSE(client.over_send_queue()) << "one message alone never counts";
  for (std::uint64_t step = 2; step <= 200; ++step) hub_.on_step(live_point(1, step));
  EXPECT_TRUE(client.over_send_queue());
  EXPECT_EQ(client.cursor(), hub_.end()) << "what it is owed was copied out of the log";
  client.close();
  std::string frames;
  EXPECT_FALSE(client.fill_batch(frames)) << "a closed client sends nothing more";
  hub_.remove(cursor);
}

}  // namespace
}  // namespace vapor::http
