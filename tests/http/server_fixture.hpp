#pragma once

// An in-process vapord network surface on 127.0.0.1 with a free port: real scheduler (system
// clock), real SQLite store in memory, the daemon's JobService, real Beast server, run on its
// own thread.

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "app/job_service.hpp"
#include "http/feed_hub.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "metrics/vapor_metrics.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/scheduler_driver.hpp"
#include "store/sqlite_job_store.hpp"
#include "store/store_thread.hpp"
#include "support/job_specs.hpp"

namespace vapor::testing {

inline const std::string test_token = "test-token-0123456789abcdef";
/// The shared part of the test server's /metrics (the head is "up 1\n").
inline const auto metrics_jobs_text = std::make_shared<const std::string>("jobs 2\n");

/// Calls any CountingObserver received after it was destroyed (a teardown-order defect).
inline std::atomic<int> calls_after_destruction{0};
/// The CountingObservers alive now (a flag in the object itself could be optimised away).
inline std::mutex live_observers_mutex;
inline std::set<const void*> live_observers;

/// Counts what the server reports; read from the test thread.
class CountingObserver final : public http::ServerObserver {
 public:
  CountingObserver() {
    std::lock_guard lock(live_observers_mutex);
    live_observers.insert(this);
  }
  CountingObserver(const CountingObserver&) = delete;
  CountingObserver& operator=(const CountingObserver&) = delete;
  ~CountingObserver() override {
    std::lock_guard lock(live_observers_mutex);
    live_observers.erase(this);
  }

  void on_request(std::string_view handler, unsigned status) override {
    check_alive();
    std::lock_guard lock(mutex_);
    ++requests_[std::string(handler) + " " + std::to_string(status)];
  }
  void on_websocket_clients(std::size_t clients) override {
    check_alive();
    clients_ = clients;
  }
  void on_websocket_disconnect(std::string_view reason) override {
    check_alive();
    std::lock_guard lock(mutex_);
    ++disconnects_[std::string(reason)];
  }
  int requests(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = requests_.find(key);
    return it == requests_.end() ? 0 : it->second;
  }
  int disconnects(const std::string& reason) const {
    std::lock_guard lock(mutex_);
    auto it = disconnects_.find(reason);
    return it == disconnects_.end() ? 0 : it->second;
  }
  std::size_t clients() const { return clients_; }

 private:
  // ASan also reports such a call itself.
  void check_alive() const {
    std::lock_guard lock(live_observers_mutex);
    if (!live_observers.contains(this)) ++calls_after_destruction;
  }

  mutable std::mutex mutex_;
  std::map<std::string, int> requests_;
  std::map<std::string, int> disconnects_;
  std::atomic<std::size_t> clients_{0};
};

class TestServer {
 public:
  explicit TestServer(http::ServerOptions options = {}, std::size_t max_concurrent = 100)
      : store_(ioc_.get_executor(), store::SqliteJobStore::open({":memory:"}).value(), 1'000'000),
        scheduler_({max_concurrent, std::chrono::seconds(30), 10'000}, clock_),
        driver_(ioc_.get_executor(), scheduler_),
        hub_(ioc_),
        jobs_({{}, 10'000, "jobs.yaml", 1 << 20, ":memory:"}, scheduler_,
              [this](const store::NewJob& job) { store_.add_job(job); }, metrics_, clock_,
              [this] { driver_.rearm(); }),
        access_{test_token, "127.0.0.1", 0, {}, {}},
        router_{scheduler_, store_, jobs_, access_, {}, [] { return http::MetricsText{"up 1\n", metrics_jobs_text}; },
                [] { return true; }},
        options_(std::move(options)) {
    scheduler_.add_listener(store_);
    scheduler_.add_listener(hub_);
  }

  ~TestServer() { stop(); }

  /// Adds a job before `start()` (the scheduler is not thread-safe once running); ids are
  /// handed out in order from 1, and `id` must be the next one.
  void add_job(core::JobId id, core::JobSpec spec) {
    core::JobId given = 0;
    if (auto refused = jobs_.submit(std::move(spec), given)) {
      throw std::runtime_error(refused->message);
    }
    if (given != id) throw std::logic_error("jobs are added in id order from 1");
  }

  void start() {
    options_.host = "127.0.0.1";
    options_.port = 0;
    server_ = std::make_unique<http::Server>(ioc_, options_, router_, hub_, observer_);
    port_ = server_->listen().value();
    driver_.rearm();
    store_.start();  // history is read on a store thread, as in the daemon
    thread_ = std::thread([this] { ioc_.run(); });
  }

  /// Runs `work` on the server's thread and waits for it.
  template <class Work>
  void on_loop(Work work) {
    std::promise<void> done;
    boost::asio::post(ioc_, [&] {
      work();
      done.set_value();
    });
    done.get_future().wait();
  }

  /// Occupies the store thread for `duration` (as a long history read would), from now on.
  void block_store_for(std::chrono::milliseconds duration) {
    on_loop([&] {
      store_.run_on_store([duration](store::SqliteJobStore&) {
        std::this_thread::sleep_for(duration);
      }, [] {});
    });
  }

  /// Starts a (manual) job from the test thread.
  void start_job(core::JobId id) {
    on_loop([&] {
      scheduler_.start(id).value();
      driver_.rearm();
    });
  }

  void stop() {
    if (!thread_.joinable()) return;
    boost::asio::post(ioc_, [this] {
      driver_.cancel();
      server_->stop();
    });
    thread_.join();
  }

  /// Stops the loop where it is, as an exception out of run() would: sessions, timers and reads
  /// stay queued, for the io_context's destructor to destroy after every other member.
  void abandon() {
    ioc_.stop();
    thread_.join();
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const CountingObserver& observer() const { return observer_; }

 private:
  boost::asio::io_context ioc_{1};
  runtime::SystemClock clock_;
  store::StoreThread store_;
  runtime::Scheduler scheduler_;
  runtime::SchedulerDriver driver_;
  http::FeedHub hub_;
  metrics::VaporMetrics metrics_{{"test", "test"}, std::chrono::minutes(5)};
  app::JobService jobs_;
  http::AccessPolicy access_;
  http::RouterContext router_;
  CountingObserver observer_;
  http::ServerOptions options_;
  std::unique_ptr<http::Server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

inline core::JobSpec fast_job(std::string name, std::uint64_t steps,
                              std::chrono::milliseconds interval = std::chrono::milliseconds(2)) {
  return simulated_job(std::move(name), steps, interval);
}

}  // namespace vapor::testing
