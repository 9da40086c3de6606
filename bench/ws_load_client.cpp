// WebSocket fan-out load client for bench/network_bench.sh: opens N connections to a live feed,
// waits until every handshake is done, warms up, then counts every message received during a
// fixed window and the step-to-client latency of each point message (its `ts` field, RFC 3339
// with milliseconds, against this machine's wall clock on arrival). Prints one JSON line.
//
// One thread, one io_context: the benchmark pins it to a core of its own. To tell whether the
// client or the server was the limit it reports its own CPU use over the window, the server's
// (--server-pid), and how many bytes sat unread in its sockets' kernel receive queues (sampled
// every 100 ms): a client that keeps up leaves next to nothing there. It also reports how busy
// each CPU was over the window (all processes), which shows when other work shared the cores.
//
// A server may close clients it thinks are too slow (vapord's 1008 "send queue full"), so the
// client also reports the rate and latency from "all connected" until the first close.
//
// Usage: ws_load_client --port P [--host 127.0.0.1] [--path /ws] --connections N
//                       [--warmup-seconds S] [--seconds S] [--connect-timeout-seconds S]
//                       [--server-pid PID]

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string path = "/ws";
  std::size_t connections = 100;
  double warmup_seconds = 2;
  double seconds = 10;
  double connect_timeout_seconds = 20;
  int server_pid = 0;
};

/// Latency histogram with 0.1 ms buckets up to 120 s; later values land in the last bucket.
class LatencyHistogram {
 public:
  void add(std::int64_t micros) {
    const auto bucket =
        static_cast<std::size_t>(std::clamp<std::int64_t>(micros / 100, 0, max_bucket));
    ++buckets_[bucket];
    ++count_;
    if (micros < 0) ++negative_;
    max_ = std::max(max_, micros);
  }

  /// The value below which `fraction` of samples fall, in milliseconds (bucket upper edge);
  /// -1 without samples.
  [[nodiscard]] double quantile_ms(double fraction) const {
    if (count_ == 0) return -1;
    const auto wanted = static_cast<std::uint64_t>(fraction * static_cast<double>(count_));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen > wanted) return static_cast<double>(i + 1) / 10.0;
    }
    return static_cast<double>(buckets_.size()) / 10.0;
  }

  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::uint64_t negative() const { return negative_; }
  [[nodiscard]] double max_ms() const { return static_cast<double>(max_) / 1000.0; }

 private:
  static constexpr std::int64_t max_bucket = 1'200'000 - 1;
  std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(max_bucket + 1, 0);
  std::uint64_t count_ = 0;
  std::uint64_t negative_ = 0;
  std::int64_t max_ = 0;
};

/// Microseconds since the Unix epoch for `YYYY-MM-DDTHH:MM:SS.mmmZ`, or nothing.
std::optional<std::int64_t> parse_rfc3339_millis(std::string_view text) {
  if (text.size() < 24 || text[4] != '-' || text[10] != 'T' || text[19] != '.') return std::nullopt;
  const auto number = [&](std::size_t at, std::size_t width) {
    int value = 0;
    for (std::size_t i = at; i < at + width; ++i) value = value * 10 + (text[i] - '0');
    return value;
  };
  using namespace std::chrono;
  const year_month_day date{year{number(0, 4)}, month{static_cast<unsigned>(number(5, 2))},
                            day{static_cast<unsigned>(number(8, 2))}};
  const auto since_epoch = sys_days{date}.time_since_epoch() + hours{number(11, 2)} +
                           minutes{number(14, 2)} + seconds{number(17, 2)} +
                           milliseconds{number(20, 3)};
  return duration_cast<microseconds>(since_epoch).count();
}

std::int64_t wall_micros_now() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// CPU seconds (user + system) used so far by process `pid`, from /proc; -1 if unreadable.
double process_cpu_seconds(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return -1;
  char text[1024] = {};
  const std::size_t read = std::fread(text, 1, sizeof text - 1, file);
  std::fclose(file);
  // The fields after the command name (which may hold spaces) start after the last ')'.
  const std::string_view line(text, read);
  const auto close = line.rfind(')');
  if (close == std::string_view::npos || close + 2 >= read) return -1;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  if (std::sscanf(text + close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                  &utime, &stime) != 2) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// Busy and total jiffies of every CPU (cpu0, cpu1, ...) from /proc/stat; busy excludes idle and
/// iowait. Shows whether other processes shared the cores during the window.
std::vector<std::pair<double, double>> cpu_jiffies() {
  std::vector<std::pair<double, double>> out;
  std::FILE* file = std::fopen("/proc/stat", "r");
  if (file == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof line, file) != nullptr) {
    if (std::strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') continue;
    unsigned long long field[8] = {};
    if (std::sscanf(line, "%*s %llu %llu %llu %llu %llu %llu %llu %llu", &field[0], &field[1],
                    &field[2], &field[3], &field[4], &field[5], &field[6], &field[7]) < 5) {
      continue;
    }
    double total = 0;
    for (const auto value : field) total += static_cast<double>(value);
    out.emplace_back(total - static_cast<double>(field[3] + field[4]), total);
  }
  std::fclose(file);
  return out;
}

/// What every connection adds to.
struct Totals {
  std::size_t connected = 0;
  std::size_t failed = 0;
  std::size_t closed_before_window = 0;
  std::size_t closed_during_window = 0;
  std::map<std::string, std::size_t> close_reasons;  ///< "close CODE reason" or error → count

  bool all_connected = false;  ///< set when the connect phase ends
  std::optional<SteadyClock::time_point> first_close;
  /// From "all connected" until the first connection is lost (or the end of the window).
  std::uint64_t before_cut_messages = 0;
  LatencyHistogram before_cut_latency;

  bool measuring = false;  ///< the window is open
  std::uint64_t messages = 0;
  std::uint64_t points = 0;
  std::uint64_t bytes = 0;
  LatencyHistogram latency;
};

/// One feed connection. The upgrade is a Beast HTTP request and response; after it the client
/// reads the socket in large chunks and splits the frames itself (a server's frames are
/// unmasked: 2 to 10 header bytes, then the payload). Beast's websocket::stream reads one
/// message per operation, which caps one core at about a million messages a second, below what
/// the servers measured here can send; this client must not be the limit.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& ioc, const Options& options, Totals& totals)
      : stream_(ioc), options_(options), totals_(totals) {}

  void start(const tcp::resolver::results_type& endpoints) {
    stream_.expires_after(std::chrono::seconds(10));
    stream_.async_connect(endpoints,
                          [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
                            self->on_connect(ec);
                          });
  }

  [[nodiscard]] std::uint64_t window_messages() const { return window_messages_; }

  /// Bytes waiting unread in this socket's kernel receive queue.
  [[nodiscard]] std::size_t unread_bytes() {
    if (!connected_) return 0;
    beast::error_code ec;
    const auto available = stream_.socket().available(ec);
    return ec ? 0 : available;
  }

 private:
  void on_connect(beast::error_code ec) {
    if (ec) return fail("connect: " + ec.message());
    upgrade_ = {http::verb::get, options_.path, 11};
    upgrade_.set(http::field::host, options_.host + ":" + options_.port);
    upgrade_.set(http::field::upgrade, "websocket");
    upgrade_.set(http::field::connection, "Upgrade");
    upgrade_.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    upgrade_.set(http::field::sec_websocket_version, "13");
    http::async_write(stream_, upgrade_,
                      [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                        if (write_ec) return self->fail("handshake: " + write_ec.message());
                        self->read_upgrade_response();
                      });
  }

  void read_upgrade_response() {
    http::async_read(stream_, http_buffer_, upgraded_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_upgraded(ec);
                     });
  }

  void on_upgraded(beast::error_code ec) {
    if (ec) return fail("handshake: " + ec.message());
    if (upgraded_.result() != http::status::switching_protocols) {
      return fail("handshake: HTTP " + std::to_string(upgraded_.result_int()));
    }
    stream_.expires_never();
    connected_ = true;
    ++totals_.connected;
    // Frames that came with the response.
    const auto early = http_buffer_.cdata();
    buffer_.resize(std::max<std::size_t>(chunk_bytes * 2, early.size() + chunk_bytes));
    std::memcpy(buffer_.data(), early.data(), early.size());
    end_ = early.size();
    if (!parse_frames()) return;
    do_read();
  }

  void do_read() {
    if (buffer_.size() - end_ < chunk_bytes) {
      // Make room: drop what has been parsed, and grow for a frame larger than the buffer.
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      if (buffer_.size() - end_ < chunk_bytes) buffer_.resize(end_ + chunk_bytes * 2);
    }
    stream_.async_read_some(asio::buffer(buffer_.data() + end_, buffer_.size() - end_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t size) {
                              self->on_read(ec, size);
                            });
  }

  void on_read(beast::error_code ec, std::size_t size) {
    if (ec) return fail(ec.message());
    end_ += size;
    if (!parse_frames()) return;
    do_read();
  }

  /// Handles every complete frame in [begin_, end_); false once the connection is done.
  bool parse_frames() {
    while (end_ - begin_ >= 2) {
      const auto* frame = reinterpret_cast<const unsigned char*>(buffer_.data() + begin_);
      const std::size_t available = end_ - begin_;
      if ((frame[1] & 0x80) != 0) {
        fail("protocol: masked frame from the server");
        return false;
      }
      std::uint64_t length = frame[1] & 0x7F;
      std::size_t header = 2;
      if (length >= 126) {
        header = length == 126 ? 4 : 10;
        if (available < header) break;
        length = 0;
        for (std::size_t i = 2; i < header; ++i) length = (length << 8) | frame[i];
      }
      if (available < header + length) break;
      const std::string_view payload(buffer_.data() + begin_ + header, length);
      const unsigned opcode = frame[0] & 0x0F;
      const bool fin = (frame[0] & 0x80) != 0;
      begin_ += header + length;
      if (opcode == 0x8) {  // close: a 2-byte code, then the reason
        std::string why = "close";
        if (payload.size() >= 2) {
          const auto code = (static_cast<unsigned>(static_cast<unsigned char>(payload[0])) << 8) |
                            static_cast<unsigned char>(payload[1]);
          why += " " + std::to_string(code) + " " + std::string(payload.substr(2));
        }
        fail(why);
        return false;
      }
      if (opcode == 0x9) {  // ping: vapord's keep-alive closes a client that does not answer
        send_pong(payload);
        continue;
      }
      if (opcode >= 0x8) continue;  // pong
      message_bytes_ += length;
      if (fin) on_message(payload, message_bytes_);
      if (fin) message_bytes_ = 0;
    }
    if (begin_ == end_) begin_ = end_ = 0;
    return true;
  }

  /// Answers a ping with a pong carrying the same payload, masked as a client's frames must be.
  /// Pings are rare (one per idle period), so a blocking write of a few bytes is fine here.
  void send_pong(std::string_view payload) {
    static constexpr unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    std::string frame;
    frame.push_back(static_cast<char>(0x8A));  // FIN + pong
    frame.push_back(static_cast<char>(0x80 | (payload.size() & 0x7F)));  // masked; <= 125 bytes
    frame.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
      frame.push_back(static_cast<char>(payload[i] ^ static_cast<char>(mask[i % 4])));
    }
    beast::error_code ignored;
    asio::write(stream_.socket(), asio::buffer(frame), ignored);
  }

  /// One whole message; `text` is its last frame (servers here send one frame per message).
  void on_message(std::string_view text, std::size_t size) {
    const bool counted_before_cut = totals_.all_connected && !totals_.first_close;
    if (!hello_seen_) {
      hello_seen_ = true;  // the hello (every job's summary) is not a delivery
      return;
    }
    if (!counted_before_cut && !totals_.measuring) return;
    std::optional<std::int64_t> latency;
    const bool point = text.find("\"type\":\"point\"") != std::string_view::npos;
    if (point) {
      const auto at = text.rfind("\"ts\":\"");
      if (at != std::string_view::npos) {
        if (const auto sent = parse_rfc3339_millis(text.substr(at + 6))) {
          latency = wall_micros_now() - *sent;
        }
      }
    }
    if (counted_before_cut) {
      ++totals_.before_cut_messages;
      if (latency) totals_.before_cut_latency.add(*latency);
    }
    if (totals_.measuring) {
      ++totals_.messages;
      ++window_messages_;
      totals_.bytes += size;
      if (point) ++totals_.points;
      if (latency) totals_.latency.add(*latency);
    }
  }

  void fail(const std::string& why) {
    if (connected_ && !totals_.first_close) totals_.first_close = SteadyClock::now();
    if (connected_) {
      --totals_.connected;
      ++(totals_.measuring ? totals_.closed_during_window : totals_.closed_before_window);
    } else {
      ++totals_.failed;
    }
    connected_ = false;
    ++totals_.close_reasons[why];
  }

  static constexpr std::size_t chunk_bytes = 256 * 1024;

  beast::tcp_stream stream_;
  const Options& options_;
  Totals& totals_;
  http::request<http::empty_body> upgrade_;
  http::response<http::string_body> upgraded_;
  beast::flat_buffer http_buffer_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;  ///< first unparsed byte
  std::size_t end_ = 0;    ///< one past the last byte read
  std::size_t message_bytes_ = 0;
  bool connected_ = false;
  bool hello_seen_ = false;
  std::uint64_t window_messages_ = 0;
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "ws_load_client: " << flag << " needs a value\n";
      std::exit(2);
    }
    const std::string value = argv[++i];
    if (flag == "--host") {
      options.host = value;
    } else if (flag == "--port") {
      options.port = value;
    } else if (flag == "--path") {
      options.path = value;
    } else if (flag == "--connections") {
      options.connections = std::stoul(value);
    } else if (flag == "--warmup-seconds") {
      options.warmup_seconds = std::stod(value);
    } else if (flag == "--seconds") {
      options.seconds = std::stod(value);
    } else if (flag == "--connect-timeout-seconds") {
      options.connect_timeout_seconds = std::stod(value);
    } else if (flag == "--server-pid") {
      options.server_pid = std::stoi(value);
    } else {
      std::cerr << "ws_load_client: unknown option " << flag << "\n";
      std::exit(2);
    }
  }
  if (options.port.empty() || options.connections == 0) {
    std::cerr << "usage: ws_load_client --port P --connections N [--seconds S]\n";
    std::exit(2);
  }
  return options;
}

std::string json_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

/// Samples the unread bytes in every connection's receive queue every 100 ms.
class BacklogSampler {
 public:
  BacklogSampler(asio::io_context& ioc, std::vector<std::shared_ptr<Connection>>& connections)
      : timer_(ioc), connections_(connections) {}

  void start() {
    timer_.expires_after(std::chrono::milliseconds(100));
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      std::size_t unread = 0;
      for (auto& connection : connections_) unread += connection->unread_bytes();
      sum_ += static_cast<double>(unread);
      max_ = std::max(max_, unread);
      ++samples_;
      start();
    });
  }

  void stop() { timer_.cancel(); }
  [[nodiscard]] double mean_bytes() const { return samples_ == 0 ? 0 : sum_ / samples_; }
  [[nodiscard]] std::size_t max_bytes() const { return max_; }

 private:
  asio::steady_timer timer_;
  std::vector<std::shared_ptr<Connection>>& connections_;
  double sum_ = 0;
  double samples_ = 0;
  std::size_t max_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  asio::io_context ioc(1);
  Totals totals;
  tcp::resolver resolver(ioc);
  const auto endpoints = resolver.resolve(options.host, options.port);

  std::vector<std::shared_ptr<Connection>> connections;
  connections.reserve(options.connections);
  for (std::size_t i = 0; i < options.connections; ++i) {
    connections.push_back(std::make_shared<Connection>(ioc, options, totals));
    connections.back()->start(endpoints);
  }

  const auto seconds = [](double s) {
    return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
  };
  // Runs the loop until `deadline`, even when every connection has gone (the loop then has no
  // work and returns early).
  const auto run_until = [&ioc](SteadyClock::time_point deadline) {
    while (SteadyClock::now() < deadline) {
      ioc.run_until(deadline);
      if (ioc.stopped()) {
        ioc.restart();
        std::this_thread::sleep_until(deadline);
      }
    }
  };

  // Connect phase: until every handshake has finished or failed.
  const auto began = SteadyClock::now();
  while (totals.connected + totals.failed + totals.closed_before_window < options.connections &&
         SteadyClock::now() - began < seconds(options.connect_timeout_seconds)) {
    run_until(SteadyClock::now() + std::chrono::milliseconds(20));
  }
  const auto all_connected_at = SteadyClock::now();
  const double connect_seconds = std::chrono::duration<double>(all_connected_at - began).count();
  const std::size_t connected_after_connect = totals.connected;
  totals.all_connected = true;

  run_until(all_connected_at + seconds(options.warmup_seconds));

  // The window.
  BacklogSampler backlog(ioc, connections);
  backlog.start();
  const std::size_t connected_at_start = totals.connected;
  totals.measuring = true;
  const auto cpus_before = cpu_jiffies();
  const double cpu_before = own_cpu_seconds();
  const double server_cpu_before =
      options.server_pid > 0 ? process_cpu_seconds(options.server_pid) : -1;
  const auto window_began = SteadyClock::now();
  run_until(window_began + seconds(options.seconds));
  totals.measuring = false;
  const auto window_ended = SteadyClock::now();
  backlog.stop();
  const double window = std::chrono::duration<double>(window_ended - window_began).count();
  const double cpu_used = own_cpu_seconds() - cpu_before;
  const auto cpus_after = cpu_jiffies();
  std::string cpu_busy;
  for (std::size_t i = 0; i < cpus_before.size() && i < cpus_after.size(); ++i) {
    const double total = cpus_after[i].second - cpus_before[i].second;
    const double busy = cpus_after[i].first - cpus_before[i].first;
    if (!cpu_busy.empty()) cpu_busy += ",";
    char text[16];
    std::snprintf(text, sizeof text, "%.2f", total > 0 ? busy / total : 0.0);
    cpu_busy += text;
  }
  const double server_cpu_after =
      options.server_pid > 0 ? process_cpu_seconds(options.server_pid) : -1;
  const double server_cpu_ratio = server_cpu_before < 0 || server_cpu_after < 0
                                      ? -1
                                      : (server_cpu_after - server_cpu_before) / window;

  // Negative when the first client was closed before the last one had connected.
  const auto cut = totals.first_close.value_or(window_ended);
  const double before_cut_seconds = std::chrono::duration<double>(cut - all_connected_at).count();
  // Relative to "all connected": negative when a client was lost while others still connected.
  const double first_close_seconds =
      totals.first_close
          ? std::chrono::duration<double>(*totals.first_close - all_connected_at).count()
          : 0;

  std::uint64_t least = UINT64_MAX;
  std::uint64_t most = 0;
  for (const auto& connection : connections) {
    least = std::min(least, connection->window_messages());
    most = std::max(most, connection->window_messages());
  }
  std::string reasons;
  for (const auto& [why, count] : totals.close_reasons) {
    if (!reasons.empty()) reasons += ",";
    reasons += "\"" + json_escape(why) + "\":" + std::to_string(count);
  }
  const auto u64 = [](std::uint64_t value) { return static_cast<unsigned long long>(value); };
  std::printf(
      "{\"connections\":%zu,\"connected_after_connect\":%zu,\"connected_at_start\":%zu,"
      "\"connected_at_end\":%zu,\"connect_failed\":%zu,\"closed_before_window\":%zu,"
      "\"closed_during_window\":%zu,\"connect_seconds\":%.2f,\"window_seconds\":%.3f,"
      "\"messages\":%llu,\"points\":%llu,\"bytes\":%llu,\"deliveries_per_second\":%.0f,"
      "\"mbytes_per_second\":%.1f,\"mean_message_bytes\":%.0f,"
      "\"per_connection_min\":%llu,\"per_connection_max\":%llu,"
      "\"latency_samples\":%llu,\"latency_negative\":%llu,\"latency_p50_ms\":%.1f,"
      "\"latency_p99_ms\":%.1f,\"latency_max_ms\":%.1f,"
      "\"lost\":%s,\"first_close_seconds\":%.2f,\"before_cut_seconds\":%.2f,"
      "\"before_cut_deliveries_per_second\":%.0f,\"before_cut_latency_p99_ms\":%.1f,"
      "\"client_cpu_ratio\":%.2f,\"server_cpu_ratio\":%.2f,"
      "\"client_unread_mean_bytes\":%.0f,\"client_unread_max_bytes\":%zu,"
      "\"cpu_busy\":[%s],\"close_reasons\":{%s}}\n",
      options.connections, connected_after_connect, connected_at_start, totals.connected,
      totals.failed, totals.closed_before_window, totals.closed_during_window, connect_seconds,
      window, u64(totals.messages), u64(totals.points), u64(totals.bytes),
      static_cast<double>(totals.messages) / window,
      static_cast<double>(totals.bytes) / window / 1e6,
      totals.messages == 0
          ? 0.0
          : static_cast<double>(totals.bytes) / static_cast<double>(totals.messages),
      u64(least), u64(most), u64(totals.latency.count()), u64(totals.latency.negative()),
      totals.latency.quantile_ms(0.50), totals.latency.quantile_ms(0.99), totals.latency.max_ms(),
      totals.first_close ? "true" : "false", first_close_seconds, before_cut_seconds,
      before_cut_seconds > 0 ? static_cast<double>(totals.before_cut_messages) / before_cut_seconds
                             : 0.0,
      totals.before_cut_latency.quantile_ms(0.99), cpu_used / window, server_cpu_ratio,
      backlog.mean_bytes(), backlog.max_bytes(), cpu_busy.c_str(), reasons.c_str());
  std::fflush(stdout);
  // Leave without closing handshakes: the server sees resets, as at the end of any load test.
  std::_Exit(0);
}
