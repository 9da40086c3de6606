#include "app/app.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "app/api_token.hpp"
#include "app/build_revision.hpp"
#include "app/job_service.hpp"
#include "app/queue_watcher.hpp"
#include "app/systemd_lifecycle.hpp"
#include "http/feed_hub.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "metrics/vapor_metrics.hpp"
#include "runtime/clock.hpp"
#include "runtime/job_logger.hpp"
#include "runtime/scheduler.hpp"
#include "runner/command_runner.hpp"
#include "runtime/scheduler_driver.hpp"
#include "store/sqlite_job_store.hpp"
#include "store/store_thread.hpp"
#include "store/write_behind.hpp"
#include "support/log.hpp"
#include "support/repeating_timer.hpp"

namespace vapor::app {
namespace asio = boost::asio;

namespace {

/// Where vapord keeps files it creates: systemd's StateDirectory, else the database's folder.
std::filesystem::path state_directory(const config::DaemonConfig& config) {
  if (const char* state = std::getenv("STATE_DIRECTORY"); state != nullptr && *state != '\0') {
    std::string first(state);
    return first.substr(0, first.find(':'));
  }
  auto folder = config.database.parent_path();
  return folder.empty() ? std::filesystem::path(".") : folder;
}

store::Synchronous to_store(config::SynchronousMode mode) {
  switch (mode) {
    case config::SynchronousMode::off: return store::Synchronous::off;
    case config::SynchronousMode::normal: return store::Synchronous::normal;
    case config::SynchronousMode::full: return store::Synchronous::full;
    case config::SynchronousMode::extra: return store::Synchronous::extra;
  }
  return store::Synchronous::normal;
}

store::StoreOptions store_options(const config::DaemonConfig& config) {
  store::StoreOptions options;
  options.path = config.database;
  options.synchronous = to_store(config.store.synchronous);
  options.busy_timeout = config.store.busy_timeout;
  options.cache_bytes = config.store.cache_bytes;
  options.max_pending_rows = config.store.max_pending_rows;
  return options;
}

JobServiceOptions job_service_options(const config::DaemonConfig& config) {
  return {config::SpecDefaults{config.scheduler.step_interval}, config.scheduler.max_jobs,
          config.queue, config.queue_max_bytes, config.database.string(),
          config.api.allow_command_jobs};
}

http::ServerOptions server_options(const config::DaemonConfig& config) {
  http::ServerOptions options;
  options.host = config.listen_host;
  options.port = config.listen_port;
  options.max_header_bytes = config.api.max_header_bytes;
  options.max_body_bytes = config.api.max_body_bytes;
  options.read_timeout = config.api.read_timeout;
  options.max_connections = config.api.max_connections;
  options.websocket_max_clients = config.websocket.max_clients;
  options.websocket_send_queue_bytes = config.websocket.send_queue_bytes;
  options.server_version = std::string("vapord/") + VAPOR_VERSION;
  return options;
}

/// How often finished jobs' series are checked for expiry: a tenth of their time to live.
std::chrono::milliseconds expiry_period(std::chrono::milliseconds finished_job_ttl) {
  return std::clamp(finished_job_ttl / 10, std::chrono::milliseconds(100),
                    std::chrono::milliseconds(10'000));
}

/// How long App's destructor runs the loop to finish work an unfinished run left behind.
constexpr std::chrono::seconds teardown_drain{5};

/// How often retention runs: every minute, or more often for a retention shorter than ten minutes
/// (a tenth of it, at least every second), so that points never outstay it by much.
std::chrono::milliseconds prune_period(std::chrono::milliseconds keep_points) {
  return std::clamp(keep_points / 10, std::chrono::milliseconds(1000),
                    std::chrono::milliseconds(60'000));
}

}  // namespace

/// The wiring: who listens to whom, what each piece is built from, and the shutdown order.
struct App::Impl final : http::ServerObserver, store::WriteBehindObserver {
  Impl(const config::DaemonConfig& daemon_config, std::unique_ptr<store::SqliteJobStore> job_store,
       std::string api_token, const std::filesystem::path& state_dir)
      : config(daemon_config),
        store(ioc.get_executor(), std::move(job_store), config.store.max_pending_rows),
        scheduler(runtime::SchedulerOptions{config.scheduler.max_concurrent,
                                            config.scheduler.stall_timeout,
                                            config.scheduler.max_jobs},
                  clock),
        logger(scheduler),
        metrics({VAPOR_VERSION, VAPOR_REVISION}, config.metrics.finished_job_ttl),
        hub(ioc),
        driver(ioc.get_executor(), scheduler),
        jobs(job_service_options(config), scheduler,
             [this](const store::NewJob& job) { store.add_job(job); }, metrics, clock,
             [this] { driver.rearm(); }),
        flusher(ioc.get_executor(), store,
                {config.store.flush_interval, config.store.flush_rows, config.store.keep_points,
                 config.store.prune_batch_rows, prune_period(config.store.keep_points)},
                *this),
        access{std::move(api_token), config.listen_host, config.listen_port,
               config.api.allowed_hosts, config.api.allowed_origins},
        router{scheduler,
               store,
               jobs,
               access,
               config::SpecDefaults{config.scheduler.step_interval},
               [this] {
                 auto scrape = metrics.scrape(std::chrono::steady_clock::now());
                 return http::MetricsText{std::move(scrape.head), std::move(scrape.jobs)};
               },
               [this] {
                 return jobs.queue_loaded() && !stopping && !flusher.failed_permanently();
               }},
        runner(ioc.get_executor(), scheduler,
               {state_dir / "logs", config.jobs.max_metric_line_bytes, config.jobs.log_max_bytes},
               {[this] { driver.rearm(); },
                [this](core::JobId) { metrics.count_metric_line_rejected(); }}),
        expire_timer(ioc.get_executor(), [this] { metrics.expire_finished(clock.wall_now()); }),
        signals(ioc, SIGINT, SIGTERM, SIGHUP),
        watcher(ioc.get_executor(), config.queue, [this] { reload_queue("the file changed"); }),
        server(ioc, server_options(config), router, hub, *this),
        lifecycle(ioc.get_executor(), [this] { return status_text(); }) {
    // The store first: the feed's replay reads it, so it must hold every point already sent.
    scheduler.add_listener(store);
    scheduler.add_listener(metrics);
    scheduler.add_listener(hub);
    scheduler.add_listener(logger);
    scheduler.add_listener(flusher);  // after the store: counts the rows it has just buffered
    scheduler.add_listener(runner);   // last: starts and ends trainers once all others know
    router.max_batch_points = config.api.max_batch_points;
    // Job logs are files: read on the store thread, which does vapord's blocking reads.
    router.read_log = [this](core::JobId id, std::optional<std::uint64_t> after_byte,
                             std::size_t max_bytes, std::function<void(Result<FileTail>)> done) {
      auto tail = std::make_shared<Result<FileTail>>(fail("not read"));
      store.run_on_store(
          [tail, path = runner.log_path(id), after_byte, max_bytes](store::SqliteJobStore&) {
            *tail = read_file_tail(path, after_byte, max_bytes);
          },
          [tail, done = std::move(done)] { done(std::move(*tail)); });
    };
  }

  /// Handlers still queued (sessions, timers, the store thread's answers) point into the
  /// members below. When the loop did not run to its end (run() left by an exception, or
  /// never run), end the work and run the loop dry while they all exist, for a bounded time;
  /// what is left after it is destroyed by ~io_context against a detached server.
  ~Impl() {
    try {
      if (started) {
        shutdown();
        ioc.restart();
        ioc.run_for(teardown_drain);
      } else {
        server.stop();  // created but never run: at most an accept is pending
        ioc.restart();
        ioc.poll();
      }
    } catch (const std::exception& failure) {
      log::error(std::string("teardown: ") + failure.what());
    } catch (...) {
      log::error("teardown: unexpected failure");
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // http::ServerObserver
  void on_request(std::string_view handler, unsigned status) override {
    metrics.count_http_request(handler, status);
  }
  void on_websocket_clients(std::size_t clients) override {
    metrics.set_websocket_clients(clients);
  }
  void on_websocket_disconnect(std::string_view reason) override {
    metrics.count_websocket_disconnect(reason);
  }

  // store::WriteBehindObserver
  void on_commit(const store::FlushStats& stats) override {
    metrics.observe_store_commit(stats.duration);
  }
  void on_commit_failed(const Error&, bool permanent) override {
    metrics.count_store_error();
    if (permanent) metrics.set_store_failing(true);
  }
  void on_pruned(std::size_t points) override { metrics.count_pruned_points(points); }
  void on_backlog_changed(bool backlogged) override {
    scheduler.set_paused(backlogged);
    driver.rearm();
  }

  std::string status_text() const {
    const JobCounts counts = jobs.counts();
    return status_line({counts.queued, counts.running, counts.done, counts.failed,
                        jobs.queue_loaded(), jobs.last_reload_successful(), config.queue.string(),
                        scheduler.paused(), flusher.failing()});
  }

  void reload_queue(std::string_view why) {
    if (!stopping) jobs.load_queue(why);
  }

  void do_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (ec) return;
      if (signal_number == SIGHUP) {
        lifecycle.reloading("reloading the queue " + config.queue.string());
        reload_queue("SIGHUP");
        lifecycle.reloaded();
        do_signals();
        return;
      }
      log::notice(std::string("received ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                  "; shutting down");
      shutdown();
    });
  }

  void start() {
    started = true;
    do_signals();
    store.start();
    flusher.start();
    expire_timer.start(expiry_period(config.metrics.finished_job_ttl));
    if (auto problem = watcher.start(); !problem.empty()) {
      log::warning("queue file changes will be picked up on SIGHUP only: " + problem);
    }
    driver.rearm();
    log::notice("vapord running: " + std::to_string(scheduler.jobs().size()) + " jobs, " +
                std::to_string(scheduler.running_count()) + " running");
    lifecycle.started();
  }

  void shutdown() {
    if (stopping) return;
    stopping = true;
    jobs.close();
    lifecycle.stopping("stopping: committing the last batch");
    // Stop producing, then commit what was produced; the loop ends when no work is left.
    driver.cancel();
    server.stop();
    watcher.cancel();
    flusher.cancel();
    expire_timer.cancel();
    boost::system::error_code ignored;
    signals.cancel(ignored);
    // Trainers first (their last points still count), then the last commit; the loop keeps
    // running until the processes have exited and the store thread has answered.
    runner.stop_all([this] { commit_last_batch(); });
  }

  void commit_last_batch() {
    flusher.flush_last([this](bool committed) {
      final_flush_ok = committed;
      if (committed) {
        log::notice("last batch committed; bye");
      } else {
        log::error("the last batch could not be committed; its steps will be replayed on "
                   "restart");
      }
    });
  }

  config::DaemonConfig config;
  asio::io_context ioc{1};
  runtime::SystemClock clock;
  store::StoreThread store;  ///< joined after every member that posts to it has gone
  runtime::Scheduler scheduler;
  runtime::JobLogger logger;
  metrics::VaporMetrics metrics;
  http::FeedHub hub;
  runtime::SchedulerDriver driver;
  JobService jobs;
  store::WriteBehindFlusher flusher;
  http::AccessPolicy access;
  http::RouterContext router;
  runner::CommandRunner runner;
  RepeatingTimer expire_timer;
  asio::signal_set signals;
  QueueWatcher watcher;
  http::Server server;
  SystemdLifecycle lifecycle;
  bool started = false;
  bool stopping = false;
  bool final_flush_ok = true;
};

App::App(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
App::~App() = default;

Result<std::unique_ptr<App>> App::create(const config::DaemonConfig& config,
                                         const std::filesystem::path& config_path) {
  auto opened = store::SqliteJobStore::open(store_options(config));
  if (!opened) return opened.error();
  log::info("store " + config.database.string() + " open (config " + config_path.string() + ")");

  const auto state_dir = state_directory(config);
  auto token = load_api_token(config.api.token_file, state_dir);
  if (!token) return token.error();
  if (token->created) {
    log::notice("api token created in " + token->path.string() +
                " (mode 0600); send it as 'Authorization: Bearer <token>'");
  } else {
    log::info("api token read from " + token->path.string());
  }

  auto impl =
      std::make_unique<Impl>(config, std::move(*opened), std::move(token->token), state_dir);
  if (auto restored = impl->jobs.restore(impl->store.startup_store()); !restored) {
    return restored.error();
  }
  impl->jobs.load_queue("start-up");
  auto port = impl->server.listen();
  if (!port) return port.error();
  log::notice("listening on http://" + config.listen_host + ":" + std::to_string(*port) +
              " (/metrics, /api/v1/jobs, /ws)");
  return std::unique_ptr<App>(new App(std::move(impl)));
}

int App::run() {
  impl_->start();
  impl_->ioc.run();
  return impl_->final_flush_ok ? 0 : 1;
}

void App::stop() { impl_->shutdown(); }

}  // namespace vapor::app
