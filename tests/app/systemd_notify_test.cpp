// vapord under a service manager: the sd_notify messages systemd would receive on NOTIFY_SOCKET
// (READY, RELOADING, STOPPING, STATUS, WATCHDOG), read here from a datagram socket of our own.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/systemd_notifier.hpp"
#include "daemon_fixture.hpp"

namespace vapor::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::chrono::milliseconds milliseconds_until(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
}

/// One datagram from the daemon and when it arrived.
struct Notification {
  std::string text;
  Clock::time_point at;
};

/// The service manager's end of the notify protocol: an AF_UNIX datagram socket bound to a path.
class NotifySocket {
 public:
  explicit NotifySocket(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const auto text = path_.string();
    if (text.size() >= sizeof(address.sun_path)) throw std::runtime_error("socket path too long");
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      throw std::runtime_error("bind " + text + ": " + std::strerror(errno));
    }
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  /// The next datagram, or nothing within `timeout`.
  std::optional<Notification> receive(std::chrono::milliseconds timeout) {
    pollfd waiting{fd_, POLLIN, 0};
    if (::poll(&waiting, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buffer[4096];
    const auto got = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (got < 0) return std::nullopt;
    Notification notification{std::string(buffer, static_cast<std::size_t>(got)), Clock::now()};
    history_.push_back(notification);
    return notification;
  }

  /// Receives until a datagram has a line equal to `line` (e.g. "READY=1"), or `timeout` passes.
  std::optional<Notification> wait_for_line(const std::string& line,
                                            std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto notification = receive(std::max(milliseconds_until(deadline), 1ms));
      if (notification && has_line(notification->text, line)) return notification;
    }
    return std::nullopt;
  }

  /// Every datagram received so far, oldest first.
  [[nodiscard]] const std::vector<Notification>& history() const { return history_; }
  [[nodiscard]] std::string history_text() const {
    std::string text;
    for (const auto& notification : history_) text += "[" + notification.text + "]\n";
    return text;
  }

  static bool has_line(const std::string& text, const std::string& line) {
    std::size_t start = 0;
    while (start <= text.size()) {
      auto end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (text.compare(start, end - start, line) == 0) return true;
      start = end + 1;
    }
    return false;
  }

  /// The value of `NAME=` in a datagram, if it has that line.
  static std::optional<std::string> value_of(const std::string& text, const std::string& name) {
    const std::regex pattern("(^|\n)" + name + "=([^\n]*)");
    std::smatch match;
    if (!std::regex_search(text, match, pattern)) return std::nullopt;
    return match[2].str();
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<Notification> history_;
};

/// The status code of `GET path` on 127.0.0.1:port (0 when there is no answer).
int http_get_status(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                                std::to_string(port) + "\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[1024];
      ssize_t got = 0;
      while ((got = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        response.append(buffer, static_cast<std::size_t>(got));
      }
    }
  }
  ::close(fd);
  std::smatch match;
  if (!std::regex_search(response, match, std::regex("^HTTP/1\\.1 (\\d{3}) "))) return 0;
  return std::stoi(match[1].str());
}

/// The port from the daemon's "listening on http://127.0.0.1:N" line (0 if not logged yet).
int logged_port(const std::string& log) {
  std::smatch match;
  if (!std::regex_search(log, match, std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"))) {
    return 0;
  }
  return std::stoi(match[1].str());
}

std::uint64_t monotonic_microseconds() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
         static_cast<std::uint64_t>(now.tv_nsec) / 1'000U;
}

const std::string long_job = "  - name: long\n    epochs: 1\n    steps_per_epoch: 100000\n"
                             "    step_interval: 10ms\n";
const std::string manual_job = "  - name: later\n    epochs: 1\n    start: manual\n";

/// vapord started as systemd would start a Type=notify unit with WatchdogSec=800ms.
class NotifiedDaemon : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& environment = {"WATCHDOG_USEC=400000",
                                                            "WATCHDOG_PID"}) {
    write_file(dir_ / "jobs.yaml", "jobs:\n" + long_job + manual_job);
    write_file(dir_ / "vapord.yaml", test_daemon_config(dir_));
    auto full_environment = environment;
    full_environment.push_back("NOTIFY_SOCKET=" + socket_.path().string());
    daemon_ = std::make_unique<ChildProcess>(
        vapord_path(), std::vector<std::string>{"--config", (dir_ / "vapord.yaml").string()},
        dir_ / "vapord.log", full_environment);
  }
  [[nodiscard]] std::string log() const { return read_file(dir_ / "vapord.log"); }
  [[nodiscard]] std::string report() const {
    return "notifications:\n" + socket_.history_text() + "log:\n" + log();
  }
  /// Waits for READY=1 from start-up; fails the test if it does not come.
  Notification wait_ready() {
    auto ready = socket_.wait_for_line("READY=1", 10s);
    if (!ready) {
      ADD_FAILURE() << "no READY=1\n" << report();
      return {};
    }
    return *ready;
  }

  TempDir dir_;
  NotifySocket socket_{dir_ / "notify.sock"};
  std::unique_ptr<ChildProcess> daemon_;
};

TEST_F(NotifiedDaemon, ReadyComesFirstAndOnlyOnceTheDaemonServes) {
  start();
  const auto ready = wait_ready();
  // At the moment systemd hears READY=1, a client can already use the daemon.
  const int port = logged_port(log());
  ASSERT_NE(port, 0) << report();
  EXPECT_EQ(http_get_status(port, "/readyz"), 200) << report();
  ASSERT_FALSE(socket_.history().empty());
  EXPECT_TRUE(NotifySocket::has_line(socket_.history().front().text, "READY=1"))
      << "nothing may come before READY=1\n" << report();
  const auto status = NotifySocket::value_of(ready.text, "STATUS").value_or("");
  const std::regex counts(R"(\d+ running, \d+ queued, 0 done \(0 failed\))");
  EXPECT_TRUE(std::regex_match(status, counts)) << status;
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_for(5s), 0) << report();
}

TEST_F(NotifiedDaemon, PetsTheWatchdogAtHalfItsTimeout) {
  start();
  const auto ready = wait_ready();
  std::size_t pings = 0;
  const auto window_end = ready.at + 1100ms;
  while (Clock::now() < window_end) {
    if (auto notification = socket_.receive(std::max(milliseconds_until(window_end), 1ms))) {
      if (NotifySocket::has_line(notification->text, "WATCHDOG=1")) ++pings;
    }
  }
  // WATCHDOG_USEC=400000: a ping every 200 ms, about five in this window.
  EXPECT_GE(pings, 3u) << report();
  EXPECT_LE(pings, 8u) << report();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_for(5s), 0) << report();
}

TEST_F(NotifiedDaemon, NoWatchdogPingsWhenTheyAreMeantForAnotherProcess) {
  // WATCHDOG_PID names who systemd expects pings from; here, not vapord.
  start({"WATCHDOG_USEC=400000", "WATCHDOG_PID=1"});
  wait_ready();
  EXPECT_FALSE(socket_.wait_for_line("WATCHDOG=1", 1s)) << report();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_for(5s), 0) << report();
}

TEST_F(NotifiedDaemon, SighupIsBracketedByReloadingAndReady) {
  start();
  wait_ready();
  write_file(dir_ / "jobs.yaml", "jobs:\n" + long_job + manual_job +
                                     "  - name: added\n    epochs: 1\n    start: manual\n");
  const auto before = monotonic_microseconds();
  daemon_->signal(SIGHUP);
  const auto reloading = socket_.wait_for_line("RELOADING=1", 5s);
  ASSERT_TRUE(reloading) << report();
  // systemd 253+ ignores a RELOADING=1 without the time it was sent.
  const auto sent_at = NotifySocket::value_of(reloading->text, "MONOTONIC_USEC");
  ASSERT_TRUE(sent_at) << reloading->text;
  const auto sent_at_usec = std::stoull(*sent_at);
  EXPECT_GE(sent_at_usec, before);
  EXPECT_LE(sent_at_usec, monotonic_microseconds());
  const auto ready = socket_.wait_for_line("READY=1", 5s);
  ASSERT_TRUE(ready) << report();
  EXPECT_TRUE(contains(log(), "loaded (SIGHUP)")) << "READY=1 comes after the reload\n" << report();
  const auto status = NotifySocket::value_of(ready->text, "STATUS").value_or("");
  EXPECT_TRUE(contains(status, "2 queued")) << status;
  EXPECT_FALSE(contains(status, "failed, see the log")) << status;
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_for(5s), 0) << report();
}

TEST_F(NotifiedDaemon, AFailedReloadStillEndsWithReadyAndSaysSo) {
  start();
  wait_ready();
  write_file(dir_ / "jobs.yaml", "jobs:\n" + long_job + "  - name: broken\n    epochs: ten\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(socket_.wait_for_line("RELOADING=1", 5s)) << report();
  // Otherwise `systemctl reload` would hang until its timeout although the daemon runs on.
  const auto ready = socket_.wait_for_line("READY=1", 5s);
  ASSERT_TRUE(ready) << report();
  const auto status = NotifySocket::value_of(ready->text, "STATUS").value_or("");
  EXPECT_TRUE(contains(status, "the last queue reload failed")) << status;
  EXPECT_EQ(http_get_status(logged_port(log()), "/healthz"), 200) << report();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_for(5s), 0) << report();
}

TEST_F(NotifiedDaemon, SigtermSendsStoppingAndExitsCleanly) {
  start();
  wait_ready();
  daemon_->signal(SIGTERM);
  const auto stopping = socket_.wait_for_line("STOPPING=1", 5s);
  ASSERT_TRUE(stopping) << report();
  EXPECT_EQ(daemon_->wait_for(5s), 0) << report();
  EXPECT_TRUE(contains(log(), "last batch committed")) << report();
}

TEST(NotifiedDaemonStartup, ACorruptDatabaseNeverSendsReady) {
  TempDir dir;
  NotifySocket socket(dir / "notify.sock");
  write_file(dir / "jobs.yaml", "jobs: []\n");
  write_file(dir / "vapord.yaml", test_daemon_config(dir));
  write_file(dir / "vapor.db", std::string(8192, '\x5a'));
  ChildProcess daemon(vapord_path(), {"--config", (dir / "vapord.yaml").string()},
                      dir / "vapord.log",
                      {"NOTIFY_SOCKET=" + socket.path().string(), "WATCHDOG_USEC=400000"});
  const auto status = daemon.wait_for(10s);
  ASSERT_TRUE(status) << read_file(dir / "vapord.log");
  EXPECT_NE(*status, 0);
  // Everything the daemon sent is queued in the socket by now.
  while (socket.receive(100ms)) {
  }
  for (const auto& notification : socket.history()) {
    EXPECT_FALSE(NotifySocket::has_line(notification.text, "READY=1")) << notification.text;
    EXPECT_FALSE(NotifySocket::has_line(notification.text, "WATCHDOG=1")) << notification.text;
  }
  EXPECT_TRUE(contains(read_file(dir / "vapord.log"), "not started"));
}

/// Sets (or, with nullptr, unsets) an environment variable for one test; restores it after.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

TEST(SystemdNotifier, DoesNothingOutsideSystemd) {
  ScopedEnvironment socket("NOTIFY_SOCKET", nullptr);
  ScopedEnvironment watchdog("WATCHDOG_USEC", "400000");
  app::SystemdNotifier notifier;
  EXPECT_FALSE(notifier.enabled());
  EXPECT_FALSE(notifier.watchdog_period());
  notifier.ready("ok");  // no socket, no error
}

TEST(SystemdNotifier, SendsOneStatusLineAndHalfTheWatchdogTimeout) {
  TempDir dir;
  NotifySocket receiver(dir / "notify.sock");
  ScopedEnvironment socket("NOTIFY_SOCKET", receiver.path().c_str());
  ScopedEnvironment watchdog("WATCHDOG_USEC", "30000000");
  ScopedEnvironment watchdog_pid("WATCHDOG_PID", std::to_string(::getpid()).c_str());
  app::SystemdNotifier notifier;
  EXPECT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_period(), std::chrono::microseconds(15'000'000));
  // A newline in a status would start a new assignment; it becomes a space.
  notifier.status("queue failed:\nREADY=1");
  const auto got = receiver.receive(2s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text, "STATUS=queue failed: READY=1");
  notifier.stopping("bye");
  const auto stopping = receiver.receive(2s);
  ASSERT_TRUE(stopping);
  EXPECT_EQ(stopping->text, "STOPPING=1\nSTATUS=bye");
}

}  // namespace
}  // namespace vapor::testing
