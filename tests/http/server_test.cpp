// The Beast listener on 127.0.0.1 with a free port, driven by real Beast clients: keep-alive,
// pipelining, limits, timeouts, and the WebSocket feed (hello, live points, replay, slow
// consumers, many clients).

#include <gtest/gtest.h>

#include <future>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <thread>

#include "server_fixture.hpp"

namespace vapor::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

tcp::socket connect(asio::io_context& ioc, std::uint16_t port) {
  tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  return socket;
}

beast_http::request<beast_http::string_body> get(const std::string& target, std::uint16_t port) {
  beast_http::request<beast_http::string_body> request{beast_http::verb::get, target, 11};
  request.set(beast_http::field::host, "127.0.0.1:" + std::to_string(port));
  return request;
}

beast_http::response<beast_http::string_body> read_response(tcp::socket& socket,
                                                            beast::flat_buffer& buffer) {
  beast_http::response<beast_http::string_body> response;
  beast_http::read(socket, buffer, response);
  return response;
}

/// Reads until the peer closes; true if that happened within `timeout`.
bool closed_within(tcp::socket& socket, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  socket.non_blocking(true);
  char scratch[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    boost::system::error_code ec;
    socket.read_some(asio::buffer(scratch), ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
    if (ec && ec != asio::error::would_block) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

class ServerTest : public ::testing::Test {
 protected:
  asio::io_context client_ioc_;
};

TEST_F(ServerTest, KeepAliveAnswersManyRequestsOnOneConnection) {
  TestServer server;
  server.start();
  auto socket = connect(client_ioc_, server.port());
  beast::flat_buffer buffer;
  for (const char* target : {"/healthz", "/api/v1/jobs", "/metrics", "/healthz"}) {
    beast_http::write(socket, get(target, server.port()));
    const auto response = read_response(socket, buffer);
    EXPECT_EQ(response.result_int(), 200u) << target;
    EXPECT_TRUE(response.keep_alive()) << target;
    // /metrics's shared part follows its own on the wire, framed by one Content-Length.
    if (std::string_view(target) == "/metrics") {
      EXPECT_EQ(response.body(), "up 1\njobs 2\n");
    }
  }
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  TestServer server;
  server.start();
  auto socket = connect(client_ioc_, server.port());
  const std::string host = "Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  const std::string pipelined = "GET /healthz HTTP/1.1\r\n" + host + "\r\n" +
                                "GET /nope HTTP/1.1\r\n" + host + "\r\n" +
                                "GET /api/v1/jobs HTTP/1.1\r\n" + host + "\r\n";
  asio::write(socket, asio::buffer(pipelined));
  beast::flat_buffer buffer;
  EXPECT_EQ(read_response(socket, buffer).result_int(), 200u);
  EXPECT_EQ(read_response(socket, buffer).result_int(), 404u);
  const auto jobs = read_response(socket, buffer);
  EXPECT_EQ(jobs.result_int(), 200u);
  EXPECT_TRUE(json::parse(jobs.body()).as_object().contains("jobs"));
}

TEST_F(ServerTest, OversizedHeadersGet431AndTheConnectionCloses) {
  TestServer server;
  server.start();
  auto socket = connect(client_ioc_, server.port());
  auto request = get("/healthz", server.port());
  request.set("X-Padding", std::string(10 * 1024, 'a'));
  beast_http::write(socket, request);
  beast::flat_buffer buffer;
  const auto response = read_response(socket, buffer);
  EXPECT_EQ(response.result_int(), 431u);
  EXPECT_NE(response.body().find("header_too_large"), std::string::npos);
  EXPECT_TRUE(closed_within(socket, 2s));
}

TEST_F(ServerTest, AConnectionOverMaxConnectionsIsAnswered503AndTheOthersStayServed) {
  http::ServerOptions options;
  options.max_connections = 2;
  TestServer server(options);
  server.start();
  auto first = connect(client_ioc_, server.port());
  auto second = connect(client_ioc_, server.port());
  beast::flat_buffer buffer;
  beast_http::write(first, get("/healthz", server.port()));
  ASSERT_EQ(read_response(first, buffer).result_int(), 200u) << "both held, one answered";

  auto third = connect(client_ioc_, server.port());
  boost::system::error_code ec;
  beast_http::write(third, get("/healthz", server.port()), ec);  // sent before it reads
  beast::flat_buffer third_buffer;
  const auto refused = read_response(third, third_buffer);
  EXPECT_EQ(refused.result_int(), 503u);
  EXPECT_EQ(refused[beast_http::field::retry_after], "1");
  EXPECT_NE(refused.body().find("over_capacity"), std::string::npos) << refused.body();
  EXPECT_TRUE(closed_within(third, 2s));

  beast_http::write(second, get("/healthz", server.port()));
  beast::flat_buffer second_buffer;
  EXPECT_EQ(read_response(second, second_buffer).result_int(), 200u)
      << "the connections within the limit are unaffected";
}

TEST_F(ServerTest, ATransferEncodingOtherThanChunkedIs400AndNothingAfterItIsARequest) {
  TestServer server;
  server.start();
  const std::string host = "Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  // What a proxy in front may frame differently: the "body" is a second request in disguise.
  const std::string smuggled = "GET /api/v1/jobs HTTP/1.1\r\n" + host + "\r\n";
  for (const std::string coding :
       {"Transfer-Encoding: gzip\r\n", "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"}) {
    SCOPED_TRACE(coding);
    auto socket = connect(client_ioc_, server.port());
    asio::write(socket, asio::buffer("POST /api/v1/jobs HTTP/1.1\r\n" + host + coding +
                                     "Content-Type: application/json\r\n\r\n" + smuggled));
    beast::flat_buffer buffer;
    const auto response = read_response(socket, buffer);
    EXPECT_EQ(response.result_int(), 400u);
    // Both framings at once Beast's parser refuses itself (bad_request); the others vapord.
    EXPECT_TRUE(response.body().find("bad_transfer_encoding") != std::string::npos ||
                response.body().find("bad_request") != std::string::npos)
        << response.body();
    EXPECT_TRUE(closed_within(socket, 2s)) << "no second answer: the rest was not a request";
  }

  // A chunked body alone is fine.
  auto socket = connect(client_ioc_, server.port());
  asio::write(socket, asio::buffer("POST /api/v1/jobs HTTP/1.1\r\n" + host +
                                   "Transfer-Encoding: chunked\r\n"
                                   "Content-Type: application/json\r\n\r\n"
                                   "2\r\n{}\r\n0\r\n\r\n"));
  beast::flat_buffer buffer;
  const auto response = read_response(socket, buffer);
  EXPECT_NE(response.body().find("unauthorized"), std::string::npos)
      << "read whole and routed (no token here): " << response.body();
}

TEST_F(ServerTest, OversizedBodiesGet413EvenWhenTheClientSendsAllOfItFirst) {
  // Python's http.client and requests write the whole body before reading anything.
  TestServer server;
  server.start();
  auto socket = connect(client_ioc_, server.port());
  beast_http::request<beast_http::string_body> request{beast_http::verb::post, "/api/v1/jobs", 11};
  request.set(beast_http::field::host, "127.0.0.1:" + std::to_string(server.port()));
  request.set(beast_http::field::content_type, "application/json");
  request.body() = std::string(3 * 1024 * 1024, ' ');  // 3 MiB over a 1 MiB limit
  request.prepare_payload();
  boost::system::error_code ec;
  beast_http::write(socket, request, ec);
  EXPECT_FALSE(ec) << "the whole body was taken: " << ec.message();
  beast::flat_buffer buffer;
  const auto response = read_response(socket, buffer);
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_TRUE(closed_within(socket, 3s));
}

TEST_F(ServerTest, IdleAndSlowConnectionsTimeOut) {
  http::ServerOptions options;
  options.read_timeout = 300ms;
  TestServer server(options);
  server.start();
  auto idle = connect(client_ioc_, server.port());
  auto slow = connect(client_ioc_, server.port());
  asio::write(slow, asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHo")));  // never finished
  EXPECT_TRUE(closed_within(idle, 3s));
  EXPECT_TRUE(closed_within(slow, 3s));
}

TEST_F(ServerTest, MalformedRequestsGet400) {
  TestServer server;
  server.start();
  auto socket = connect(client_ioc_, server.port());
  asio::write(socket, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  beast::flat_buffer buffer;
  EXPECT_EQ(read_response(socket, buffer).result_int(), 400u);
}

// ---------------------------------------------------------------------------------------------
// WebSocket feed

class FeedClient {
 public:
  FeedClient(asio::io_context& ioc, std::uint16_t port, int receive_buffer = 0)
      : ws_(ioc) {
    auto& socket = ws_.next_layer();
    socket.open(tcp::v4());
    if (receive_buffer > 0) socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    ws_.handshake("127.0.0.1:" + std::to_string(port), "/ws");
  }

  json::object next() {
    buffer_.consume(buffer_.size());
    ws_.read(buffer_);
    auto value = json::parse(beast::buffers_to_string(buffer_.data()));
    auto object = value.as_object();
    const auto seq = object.at("seq").as_int64();
    EXPECT_EQ(seq, expected_seq_) << "seq must count up by one per connection";
    expected_seq_ = seq + 1;
    return object;
  }

  void send(const std::string& text) { ws_.write(asio::buffer(text)); }
  websocket::stream<tcp::socket>& stream() { return ws_; }

 private:
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  std::int64_t expected_seq_ = 0;
};

/// Reads messages until `job_id` reaches a terminal state; returns the steps of its points.
std::vector<std::int64_t> read_until_finished(FeedClient& client, core::JobId job_id) {
  std::vector<std::int64_t> steps;
  while (true) {
    const auto message = client.next();
    const auto type = message.at("type").as_string();
    if (message.at("job_id").as_int64() != job_id) continue;
    if (type == "point") steps.push_back(message.at("step").as_int64());
    if (type == "state") {
      const auto to = message.at("to").as_string();
      if (to == "complete" || to == "failed" || to == "stopped") return steps;
    }
  }
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (auto i = first; i <= last; ++i) out.push_back(i);
  return out;
}

TEST_F(ServerTest, FeedSaysHelloThenStreamsPointsAndStates) {
  TestServer server;
  auto manual = fast_job("waits", 10);
  manual.start = core::StartMode::manual;
  server.add_job(1, manual);
  auto runs = fast_job("runs", 50, 20ms);
  runs.start = core::StartMode::manual;  // started once the client is there
  server.add_job(2, runs);
  server.start();
  FeedClient client(client_ioc_, server.port());
  const auto hello = client.next();
  EXPECT_EQ(hello.at("type").as_string(), "hello");
  ASSERT_EQ(hello.at("jobs").as_array().size(), 2u);
  EXPECT_EQ(hello.at("jobs").as_array()[0].as_object().at("name").as_string(), "waits");
  server.start_job(2);

  const auto started = client.next();
  EXPECT_EQ(started.at("type").as_string(), "state");
  EXPECT_EQ(started.at("to").as_string(), "running");

  const auto first = client.next();
  EXPECT_EQ(first.at("type").as_string(), "point");
  EXPECT_EQ(first.at("job_id").as_int64(), 2);
  for (const char* key : {"step", "epoch", "loss", "accuracy", "progress", "eta_seconds", "ts"}) {
    EXPECT_TRUE(first.contains(key)) << key;
  }
  const auto steps = read_until_finished(client, 2);
  EXPECT_FALSE(steps.empty());
  EXPECT_EQ(steps, range(2, 50));
}

/// Reads until the "subscribed" ack; nothing after it may belong to the old subscription.
void read_until_subscribed(FeedClient& client) {
  while (client.next().at("type").as_string() != "subscribed") {
  }
}

TEST_F(ServerTest, SubscribeWithSinceStepReplaysThenGoesLiveWithoutGapOrDuplicate) {
  // Tiny replay pages, a small queue and a client that does not read until the job is over:
  // the replay spans the rest of the run, so live points of the replaying job must be skipped
  // and its completion held until the replay has sent the last point.
  http::ServerOptions options;
  options.websocket_replay_page = 7;
  options.websocket_send_queue_bytes = 16 * 1024;
  options.websocket_socket_send_buffer = 8 * 1024;
  TestServer server(options);
  server.add_job(1, fast_job("replayed", 3000, 1ms));
  server.add_job(2, fast_job("ignored", 3000, 1ms));
  server.start();
  std::this_thread::sleep_for(300ms);  // a part of job 1 is history by now

  FeedClient client(client_ioc_, server.port(), 4096);  // a small window: the queue backs up
  client.send(R"({"type":"subscribe","job_ids":[1],"since_step":10})");
  std::this_thread::sleep_for(3500ms);  // the job ends while the replay waits for room
  read_until_subscribed(client);
  std::vector<std::int64_t> steps;
  bool saw_replay = false;
  while (true) {
    const auto message = client.next();
    ASSERT_EQ(message.at("job_id").as_int64(), 1) << "only the subscribed job";
    if (message.at("type").as_string() == "point") {
      steps.push_back(message.at("step").as_int64());
      if (message.contains("replay")) saw_replay = true;
    }
    if (message.at("type").as_string() == "state" && message.at("to").as_string() == "complete") {
      break;
    }
  }
  EXPECT_TRUE(saw_replay);
  EXPECT_EQ(steps, range(11, 3000)) << "no gap, no duplicate, and the completion comes last";
}

TEST_F(ServerTest, AJobThatStartsDuringAReplayIsSeenRunningBeforeItsFirstPoint) {
  // Job 1 has a long history, replayed a few pages at a time, its stored state changes among
  // its points; job 2 starts while that replay runs, so its "running" is held until job 2's own
  // replay, and must still come before its points, with "complete" after the last one.
  http::ServerOptions options;
  options.websocket_replay_page = 50;
  options.websocket_send_queue_bytes = 32 * 1024;
  options.websocket_socket_send_buffer = 8 * 1024;
  TestServer server(options);
  server.add_job(1, fast_job("history", 4000, 1ms));
  auto late = fast_job("late", 300, 2ms);
  late.start = core::StartMode::manual;
  server.add_job(2, late);
  server.start();
  std::this_thread::sleep_for(1500ms);  // job 1 builds up history

  FeedClient client(client_ioc_, server.port(), 4096);
  client.send(R"({"type":"subscribe","job_ids":[1,2],"since_step":0})");
  read_until_subscribed(client);
  server.start_job(2);
  std::map<std::int64_t, std::vector<std::string>> kinds;  // per job: "point N" and "state X"
  std::map<std::int64_t, std::vector<std::int64_t>> steps;
  std::map<std::int64_t, std::int64_t> caught_up;  // per job: the step its replay reached
  int finished = 0;
  while (finished < 2) {
    const auto message = client.next();
    const auto job = message.at("job_id").as_int64();
    if (message.at("type").as_string() == "point") {
      steps[job].push_back(message.at("step").as_int64());
      if (kinds[job].empty() || kinds[job].back() != "points") kinds[job].push_back("points");
    } else if (message.at("type").as_string() == "caught_up") {
      // Once per job, right after the last replayed point.
      EXPECT_FALSE(caught_up.contains(job)) << "job " << job << " caught up twice";
      caught_up[job] = message.at("step").as_int64();
      EXPECT_EQ(caught_up[job], steps[job].empty() ? 0 : steps[job].back());
    } else {
      const std::string to(message.at("to").as_string());
      kinds[job].push_back(to);
      if (to == "complete") ++finished;
    }
  }
  EXPECT_EQ(steps[1], range(1, 4000));
  EXPECT_EQ(steps[2], range(1, 300));
  EXPECT_EQ(kinds[2], (std::vector<std::string>{"running", "points", "complete"}));
  // Job 1 started before the subscription: its "running" comes from the store, before step 1.
  EXPECT_EQ(kinds[1], (std::vector<std::string>{"running", "points", "complete"}));
  EXPECT_EQ(caught_up.size(), 2u) << "each replayed job says when it is live";
}

TEST_F(ServerTest, ASlowHistoryReadHoldsUpNeitherOtherRequestsNorTheFeed) {
  TestServer server;
  auto runs = fast_job("runs", 600, 10ms);
  runs.start = core::StartMode::manual;
  server.add_job(1, runs);
  server.start();
  FeedClient feed(client_ioc_, server.port());
  EXPECT_EQ(feed.next().at("type").as_string(), "hello");
  server.start_job(1);
  const auto read_points = [&feed](std::size_t count) {
    std::int64_t last = 0;
    for (std::size_t seen = 0; seen < count;) {
      const auto message = feed.next();
      if (message.at("type").as_string() != "point") continue;
      last = message.at("step").as_int64();
      ++seen;
    }
    return last;
  };
  const auto recorded = read_points(20);

  // The store thread is busy for 1.5 s (a history query over a long run): a history request
  // waits for it, and meanwhile the loop answers everything else and keeps the feed live.
  server.block_store_for(1500ms);
  const auto asked = std::chrono::steady_clock::now();
  auto history = std::async(std::launch::async, [&server] {
    asio::io_context ioc;
    auto socket = connect(ioc, server.port());
    beast_http::write(socket, get("/api/v1/jobs/1/metrics?limit=10000", server.port()));
    beast::flat_buffer buffer;
    return read_response(socket, buffer);
  });
  read_points(20);
  auto socket = connect(client_ioc_, server.port());
  beast::flat_buffer buffer;
  for (const char* target : {"/healthz", "/api/v1/jobs", "/metrics", "/api/v1/jobs/1"}) {
    beast_http::write(socket, get(target, server.port()));
    EXPECT_EQ(read_response(socket, buffer).result_int(), 200u) << target;
  }
  EXPECT_EQ(history.wait_for(0s), std::future_status::timeout)
      << "20 live points and four answers came while the history read waited";

  const auto points = history.get();
  EXPECT_EQ(points.result_int(), 200u);
  EXPECT_GE(std::chrono::steady_clock::now() - asked, 1400ms);
  EXPECT_GE(json::parse(points.body()).at("points").as_array().size(),
            static_cast<std::size_t>(recorded))
      << "the read, once its turn came, saw every point recorded before it was asked for";
}

TEST_F(ServerTest, InvalidClientMessagesGetAnErrorAndTheConnectionStays) {
  TestServer server;
  server.start();
  FeedClient client(client_ioc_, server.port());
  client.next();  // hello
  client.send("{not json");
  const auto error = client.next();
  EXPECT_EQ(error.at("type").as_string(), "error");
  client.send(R"({"type":"subscribe","job_ids":"all"})");
  EXPECT_EQ(client.next().at("type").as_string(), "error");
}

TEST_F(ServerTest, SlowConsumerIsClosedWith1008WhileAnotherReceivesEverything) {
  http::ServerOptions options;
  options.websocket_send_queue_bytes = 256 * 1024;  // well above the largest burst of one tick
  options.websocket_socket_send_buffer = 16 * 1024;  // the kernel hides little of the backlog
  TestServer server(options);
  for (core::JobId id = 1; id <= 5; ++id) {
    auto job = fast_job("job" + std::to_string(id), 1200, 4ms);
    job.start = core::StartMode::manual;
    server.add_job(id, job);
  }
  server.start();
  FeedClient slow(client_ioc_, server.port(), 4096);  // never reads until it is closed
  FeedClient healthy(client_ioc_, server.port());
  healthy.next();  // hello
  for (core::JobId id = 1; id <= 5; ++id) server.start_job(id);

  // Once the server gives up on it, the slow client reads what it was sent, then the close
  // frame: 1008 policy violation.
  boost::system::error_code slow_ec = asio::error::timed_out;
  std::jthread slow_reader([&] {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (server.observer().disconnects("slow_consumer") == 0) {
      if (std::chrono::steady_clock::now() > deadline) return;  // leaves slow_ec = timed_out
      std::this_thread::sleep_for(10ms);
    }
    beast::flat_buffer buffer;
    slow_ec = {};
    while (!slow_ec) {
      buffer.consume(buffer.size());
      slow.stream().read(buffer, slow_ec);
    }
  });

  // The healthy client reads every message, in seq order (checked in next()), and sees every
  // point of job 1 without a gap.
  std::vector<std::int64_t> steps;
  bool slow_closed_meanwhile = false;
  while (true) {
    const auto message = healthy.next();
    if (server.observer().disconnects("slow_consumer") > 0) slow_closed_meanwhile = true;
    if (message.at("job_id").as_int64() != 1) continue;
    if (message.at("type").as_string() == "point") steps.push_back(message.at("step").as_int64());
    if (message.at("type").as_string() == "state" && message.at("to").as_string() == "complete") {
      break;
    }
  }
  EXPECT_EQ(steps, range(1, 1200));
  EXPECT_TRUE(slow_closed_meanwhile) << "the slow client must be cut while the feed runs";
  slow_reader.join();
  EXPECT_EQ(slow_ec, websocket::error::closed) << slow_ec.message();
  EXPECT_EQ(slow.stream().reason().code, websocket::close_code::policy_error);
  EXPECT_EQ(server.observer().disconnects("slow_consumer"), 1);
}

TEST_F(ServerTest, PingsAnsweredDuringBatchedWritesNeverSplitAFrame) {
  // The feed writes many frames per call and Beast answers pings on the same socket: with a tiny
  // send buffer every batch goes out in pieces, and a pong written between two pieces would
  // corrupt the stream. The client pings all the time and must still read every message whole.
  http::ServerOptions options;
  options.websocket_socket_send_buffer = 4096;
  TestServer server(options);
  for (core::JobId id = 1; id <= 3; ++id) {
    auto job = fast_job("job" + std::to_string(id), 3000, 1ms);
    job.start = core::StartMode::manual;
    server.add_job(id, job);
  }
  server.start();
  FeedClient client(client_ioc_, server.port(), 4096);
  int pongs = 0;
  client.stream().control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) ++pongs;
  });
  client.next();  // hello
  for (core::JobId id = 1; id <= 3; ++id) server.start_job(id);

  std::map<std::int64_t, std::vector<std::int64_t>> steps;
  int finished = 0;
  for (int received = 0; finished < 3; ++received) {
    if (received % 8 == 0) client.stream().ping({});
    const auto message = client.next();  // parses the JSON and checks seq
    const auto job = message.at("job_id").as_int64();
    if (message.at("type").as_string() == "point") steps[job].push_back(message.at("step").as_int64());
    if (message.at("type").as_string() == "state" && message.at("to").as_string() == "complete") {
      ++finished;
    }
  }
  for (core::JobId id = 1; id <= 3; ++id) EXPECT_EQ(steps[id], range(1, 3000)) << "job " << id;
  EXPECT_GT(pongs, 100) << "the pings must have been answered along the way";
}

TEST_F(ServerTest, TwoHundredClientsAreFedWithoutLoss) {
  TestServer server;
  auto broadcast = fast_job("broadcast", 100, 5ms);
  broadcast.start = core::StartMode::manual;
  server.add_job(1, broadcast);
  server.start();
  std::vector<std::unique_ptr<FeedClient>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(std::make_unique<FeedClient>(client_ioc_, server.port()));
    clients.back()->next();  // hello
  }
  EXPECT_EQ(server.observer().clients(), 200u);
  server.start_job(1);  // everyone is connected: each must see every point
  for (auto& client : clients) EXPECT_EQ(read_until_finished(*client, 1), range(1, 100));
}

TEST_F(ServerTest, SessionsLeftQueuedAtTeardownCallNothingThatIsGone) {
  calls_after_destruction = 0;
  {
    TestServer server;
    server.add_job(1, fast_job("runs", 1'000'000, 5ms));
    server.start();
    FeedClient feed(client_ioc_, server.port());
    EXPECT_EQ(feed.next().at("type").as_string(), "hello");
    tcp::socket idle = connect(client_ioc_, server.port());  // an HTTP session mid-read
    server.on_loop([] {});  // both accepted
    server.abandon();
  }  // the observer and the hub go before the io_context destroys the sessions
  EXPECT_EQ(calls_after_destruction, 0)
      << "a session destroyed after the server called its observer";
}

TEST_F(ServerTest, WebSocketClientsBeyondTheLimitGet503) {
  http::ServerOptions options;
  options.websocket_max_clients = 2;
  TestServer server(options);
  server.start();
  FeedClient first(client_ioc_, server.port());
  FeedClient second(client_ioc_, server.port());
  first.next();
  second.next();
  websocket::stream<tcp::socket> third(client_ioc_);
  third.next_layer().connect({asio::ip::make_address("127.0.0.1"), server.port()});
  websocket::response_type response;
  boost::system::error_code ec;
  third.handshake(response, "127.0.0.1:" + std::to_string(server.port()), "/ws", ec);
  EXPECT_TRUE(ec);
  EXPECT_EQ(response.result_int(), 503u);
}

}  // namespace
}  // namespace vapor::testing
