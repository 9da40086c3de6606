#include "app/app.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/api_token.hpp"
#include "app/queue_watcher.hpp"
#include "app/systemd_notifier.hpp"
#include "config/queue_file.hpp"
#include "http/feed_hub.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "metrics/vapor_metrics.hpp"
#include "core/simulator.hpp"
#include "runtime/clock.hpp"
#include "runtime/job_logger.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/scheduler_driver.hpp"
#include "store/sqlite_job_store.hpp"
#include "support/log.hpp"

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

metrics::JobIdentity identity_of(core::JobId id, const core::JobSpec& spec) {
  return {id, spec.name, spec.model, spec.epochs, spec.total_steps(), spec.batch_size,
          spec.learning_rate};
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

}  // namespace

struct App::Impl final : http::JobControl, http::ServerObserver, core::JobEventListener {
  Impl(const config::DaemonConfig& daemon_config, std::unique_ptr<store::SqliteJobStore> job_store,
       std::string api_token)
      : config(daemon_config),
        store(std::move(job_store)),
        scheduler(runtime::SchedulerOptions{config.scheduler.max_concurrent,
                                            config.scheduler.stall_timeout,
                                            config.scheduler.max_jobs},
                  clock),
        logger(scheduler),
        metrics({VAPOR_VERSION, VAPOR_REVISION}, config.metrics.finished_job_ttl),
        hub(ioc),
        access{std::move(api_token), config.listen_host, config.listen_port,
               config.api.allowed_hosts, config.api.allowed_origins},
        router{scheduler,
               *store,
               *this,
               access,
               config::SpecDefaults{config.scheduler.step_interval},
               [this] { return metrics.render(); },
               [this] { return queue_loaded && !stopping; }},
        driver(ioc.get_executor(), scheduler),
        flush_timer(ioc),
        expire_timer(ioc),
        watchdog_timer(ioc),
        status_timer(ioc),
        signals(ioc, SIGINT, SIGTERM, SIGHUP),
        watcher(ioc.get_executor(), config.queue, [this] { reload_queue("the file changed"); }),
        server(ioc, server_options(config), router, hub, *this) {
    // The store first: the feed's replay reads it, so it must hold every point already sent.
    scheduler.add_listener(*store);
    scheduler.add_listener(metrics);
    scheduler.add_listener(hub);
    scheduler.add_listener(logger);
    scheduler.add_listener(*this);  // after the store: counts the rows it has just buffered
  }

  // core::JobEventListener: a commit as soon as store.flush_rows wait, after the current burst
  // of steps, so that no single commit holds the loop for long. Not while commits fail: the
  // flush timer retries those at its own pace.
  void on_step(const core::StepRecorded&) override {
    if (early_flush_posted || failed_flushes > 0 || stopping) return;
    if (store->pending_rows() < config.store.flush_rows) return;
    early_flush_posted = true;
    asio::post(ioc, [this] {
      early_flush_posted = false;
      if (!stopping) flush_store();
    });
  }
  void on_state_changed(const core::JobStateChanged&) override {}

  // http::JobControl
  std::optional<http::ControlError> submit(core::JobSpec spec, core::JobId& id) override;
  std::optional<http::ControlError> start(core::JobId id) override;
  std::optional<http::ControlError> stop(core::JobId id) override;

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

  /// Adds a new job everywhere it lives: store, metrics, scheduler.
  Result<core::JobId> add_new_job(core::JobSpec spec);
  /// A job exists (restored, or an unknown id) for the control calls.
  std::optional<http::ControlError> check_exists(core::JobId id) const;

  Result<void> restore_jobs();
  /// Loads the queue file and adds its new jobs; all or nothing. Returns false on failure.
  bool load_queue(std::string_view why);
  void reload_queue(std::string_view why);
  void do_flush_timer();
  void do_expire_timer();
  /// Pets systemd's watchdog from the event loop: a stuck loop stops the pings.
  void do_watchdog_timer(std::chrono::microseconds period);
  /// Keeps `systemctl status` current: sends STATUS= when the job counts change.
  void do_status_timer();
  /// One line for systemd's STATUS=: "3 running, 2 queued, 10 done (1 failed)" and any trouble.
  std::string status_text() const;
  bool flush_store();
  void do_signals();
  void shutdown();

  config::DaemonConfig config;
  asio::io_context ioc{1};
  runtime::SystemClock clock;
  std::unique_ptr<store::SqliteJobStore> store;
  runtime::Scheduler scheduler;
  runtime::JobLogger logger;
  metrics::VaporMetrics metrics;
  http::FeedHub hub;
  http::AccessPolicy access;
  http::RouterContext router;
  runtime::SchedulerDriver driver;
  asio::steady_timer flush_timer;
  asio::steady_timer expire_timer;
  asio::steady_timer watchdog_timer;
  asio::steady_timer status_timer;
  asio::signal_set signals;
  QueueWatcher watcher;
  http::Server server;
  SystemdNotifier notifier;
  std::string last_status;  ///< the STATUS= systemd has
  core::JobId next_id = 1;
  std::unordered_set<std::string> unrestorable_names;  ///< in the database, not in the scheduler
  bool last_reload_successful = false;
  bool queue_loaded = false;
  std::size_t failed_flushes = 0;
  bool stopping = false;
  bool early_flush_posted = false;
  bool final_flush_ok = true;
};

Result<void> App::Impl::restore_jobs() {
  auto stored = store->load_jobs();
  if (!stored) return stored.error();
  const config::SpecDefaults defaults{config.scheduler.step_interval};
  std::size_t resumed = 0;
  auto hold = scheduler.hold_dispatch();  // priorities, not row order, decide who starts
  for (auto& row : *stored) {
    next_id = std::max(next_id, row.id + 1);
    auto spec = config::parse_job_spec(row.spec_json, "job " + std::to_string(row.id) + " in " +
                                                          config.database.string(),
                                       defaults);
    if (!spec.ok()) {
      log::error("cannot restore job " + std::to_string(row.id) + " '" + row.name +
                 "'; its history stays in the database: " + config::format_errors(spec.errors));
      unrestorable_names.insert(row.name);  // the name stays taken
      continue;
    }
    runtime::RestoredJob job;
    job.id = row.id;
    job.spec = std::move(spec.value);
    job.state = row.state;
    job.reason = row.reason;
    job.step = row.step;
    job.created_at = row.created_at;
    job.started_at = row.started_at;
    job.finished_at = row.finished_at;
    core::WallTime last_progress_at = row.created_at;
    if (row.step > 0) {
      auto last = store->load_points(row.id, row.step - 1, 1);
      if (last && !last->empty()) {
        job.loss = last->front().loss;
        job.accuracy = last->front().accuracy;
        last_progress_at = last->front().ts;
      }
    }
    if (job.state == core::JobState::running) {
      ++resumed;
      log::notice("job " + std::to_string(job.id) + " " + job.spec.name + ": resuming after step " +
                  std::to_string(job.step));
    }
    metrics::JobStatus status;
    status.state = job.state;
    status.reason = job.reason;
    status.step = job.step;
    status.epoch = core::epoch_of_step(job.spec, job.step);
    status.loss = job.loss;
    status.accuracy = job.accuracy;
    status.started_at = job.started_at;
    status.finished_at = job.finished_at;
    status.last_progress_at = last_progress_at;
    metrics.add_job(identity_of(job.id, job.spec), status);
    if (auto restored = scheduler.restore_job(std::move(job)); !restored) {
      return restored.error();
    }
  }
  log::info("restored " + std::to_string(stored->size()) + " jobs from " +
            config.database.string() + " (" + std::to_string(resumed) + " resuming)");
  return {};
}

bool App::Impl::load_queue(std::string_view why) {
  const config::SpecDefaults defaults{config.scheduler.step_interval};
  auto queue = config::load_queue_file(config.queue, defaults, config.queue_max_bytes);
  if (!queue.ok()) {
    log::error("queue " + config.queue.string() + " not loaded (" + std::string(why) +
               "); nothing changed: " + std::to_string(queue.errors.size()) + " error(s)");
    for (const auto& error : queue.errors) log::error(error.to_string());
    last_reload_successful = false;
    metrics.set_config_reload(false, clock.wall_now());
    return false;
  }
  std::vector<core::JobSpec> fresh;
  for (auto& spec : queue.value.jobs) {
    const runtime::Job* existing = scheduler.find(spec.name);
    if (unrestorable_names.contains(spec.name)) {
      log::warning("job '" + spec.name +
                   "' exists in the database but could not be restored; the queue file's entry "
                   "is ignored");
    } else if (existing == nullptr) {
      fresh.push_back(std::move(spec));
    } else if (existing->spec != spec) {
      log::warning("job '" + spec.name +
                   "' already exists; its recorded spec is kept and the queue file's changes "
                   "to it are ignored");
    }
  }
  if (scheduler.jobs().size() + fresh.size() > config.scheduler.max_jobs) {
    log::error("queue " + config.queue.string() + " not loaded (" + std::string(why) + "): " +
               std::to_string(fresh.size()) + " new jobs would pass scheduler.max_jobs = " +
               std::to_string(config.scheduler.max_jobs) + "; nothing changed");
    last_reload_successful = false;
    metrics.set_config_reload(false, clock.wall_now());
    return false;
  }
  {
    auto hold = scheduler.hold_dispatch();  // priorities, not file order, decide who starts
    for (auto& spec : fresh) {
      if (auto added = add_new_job(std::move(spec)); !added) log::error(added.error().message);
    }
  }
  driver.rearm();
  log::info("queue " + config.queue.string() + " loaded (" + std::string(why) + "): " +
            std::to_string(queue.value.jobs.size()) + " jobs in file, " +
            std::to_string(fresh.size()) + " new");
  last_reload_successful = true;
  queue_loaded = true;
  metrics.set_config_reload(true, clock.wall_now());
  return true;
}

Result<core::JobId> App::Impl::add_new_job(core::JobSpec spec) {
  if (scheduler.find(spec.name) != nullptr || unrestorable_names.contains(spec.name)) {
    return fail("a job named '" + spec.name + "' exists");
  }
  if (scheduler.jobs().size() >= config.scheduler.max_jobs) {
    return fail("job limit reached (scheduler.max_jobs = " +
                std::to_string(config.scheduler.max_jobs) + ")");
  }
  const auto id = next_id++;
  const auto now = clock.wall_now();
  store->add_job({id, spec.name, config::job_spec_to_json(spec), now});
  metrics.add_job(identity_of(id, spec), metrics::JobStatus{});
  log::notice("job " + std::to_string(id) + " " + spec.name + ": queued (" + spec.model + ", " +
              std::to_string(spec.total_steps()) + " steps" +
              (spec.start == core::StartMode::manual ? ", manual start" : "") + ")");
  if (auto added = scheduler.add_job(id, std::move(spec), now); !added) return added.error();
  driver.rearm();
  return id;
}

std::optional<http::ControlError> App::Impl::check_exists(core::JobId id) const {
  if (scheduler.find(id) != nullptr) return std::nullopt;
  return http::ControlError{http::ControlFailure::not_found, "no job with id " + std::to_string(id)};
}

std::optional<http::ControlError> App::Impl::submit(core::JobSpec spec, core::JobId& id) {
  if (stopping) return http::ControlError{http::ControlFailure::unavailable, "vapord is stopping"};
  const bool taken = scheduler.find(spec.name) != nullptr || unrestorable_names.contains(spec.name);
  auto added = add_new_job(std::move(spec));
  if (!added) {
    return http::ControlError{taken ? http::ControlFailure::conflict
                                    : http::ControlFailure::unavailable,
                              added.error().message};
  }
  id = *added;
  return std::nullopt;
}

std::optional<http::ControlError> App::Impl::start(core::JobId id) {
  if (auto missing = check_exists(id)) return missing;
  if (auto started = scheduler.start(id); !started) {
    return http::ControlError{http::ControlFailure::conflict, started.error().message};
  }
  log::notice("job " + std::to_string(id) + " " + scheduler.find(id)->spec.name +
              ": start requested through the API");
  driver.rearm();
  return std::nullopt;
}

std::optional<http::ControlError> App::Impl::stop(core::JobId id) {
  if (auto missing = check_exists(id)) return missing;
  if (auto stopped = scheduler.stop(id); !stopped) {
    return http::ControlError{http::ControlFailure::conflict, stopped.error().message};
  }
  driver.rearm();
  return std::nullopt;
}

void App::Impl::reload_queue(std::string_view why) {
  if (stopping) return;
  load_queue(why);
}

bool App::Impl::flush_store() {
  auto flushed = store->flush();
  if (flushed && (flushed->points + flushed->transitions + flushed->jobs) > 0) {
    metrics.observe_store_commit(flushed->duration);
  }
  if (!flushed) {
    metrics.count_store_error();
    if (failed_flushes++ == 0) {
      log::error("store: commit failed, keeping " + std::to_string(store->pending_rows()) +
                 " rows for the next attempt: " + flushed.error().message);
    }
  } else if (failed_flushes > 0) {
    log::notice("store: commits succeed again after " + std::to_string(failed_flushes) +
                " failed attempts");
    failed_flushes = 0;
  }
  const bool backlogged = store->backlogged();
  if (backlogged != scheduler.paused()) {
    if (backlogged) {
      log::warning("store: " + std::to_string(store->pending_rows()) +
                   " rows waiting (store.max_pending_rows); pausing jobs until commits catch up");
    } else {
      log::notice("store: caught up; jobs resume");
    }
    scheduler.set_paused(backlogged);
    driver.rearm();
  }
  return static_cast<bool>(flushed);
}

void App::Impl::do_flush_timer() {
  flush_timer.expires_after(config.store.flush_interval);
  flush_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    flush_store();
    do_flush_timer();
  });
}

void App::Impl::do_expire_timer() {
  const auto period = std::clamp(config.metrics.finished_job_ttl / 10,
                                 std::chrono::milliseconds(100), std::chrono::milliseconds(10'000));
  expire_timer.expires_after(period);
  expire_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    metrics.expire_finished(clock.wall_now());
    do_expire_timer();
  });
}

void App::Impl::do_watchdog_timer(std::chrono::microseconds period) {
  watchdog_timer.expires_after(period);
  watchdog_timer.async_wait([this, period](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    notifier.watchdog();
    do_watchdog_timer(period);
  });
}

void App::Impl::do_status_timer() {
  status_timer.expires_after(std::chrono::seconds(2));
  status_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    if (auto text = status_text(); text != last_status) {
      notifier.status(text);
      last_status = std::move(text);
    }
    do_status_timer();
  });
}

std::string App::Impl::status_text() const {
  std::size_t queued = 0;
  std::size_t running = 0;
  std::size_t done = 0;
  std::size_t failed = 0;
  for (const auto& [id, job] : scheduler.jobs()) {
    switch (job.state) {
      case core::JobState::queued: ++queued; break;
      case core::JobState::running: ++running; break;
      case core::JobState::failed: ++failed; [[fallthrough]];
      case core::JobState::complete:
      case core::JobState::stopped: ++done; break;
    }
  }
  std::string text = std::to_string(running) + " running, " + std::to_string(queued) +
                     " queued, " + std::to_string(done) + " done (" + std::to_string(failed) +
                     " failed)";
  if (!queue_loaded) {
    text += "; queue " + config.queue.string() + " not loaded, see the log";
  } else if (!last_reload_successful) {
    text += "; the last queue reload failed, see the log";
  }
  if (scheduler.paused()) text += "; jobs paused: the store is behind";
  if (failed_flushes > 0) text += "; store commits failing";
  return text;
}

void App::Impl::do_signals() {
  signals.async_wait([this](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    if (signal_number == SIGHUP) {
      // systemctl reload waits between RELOADING=1 and READY=1; a failed reload is still over.
      notifier.reloading("reloading the queue " + config.queue.string());
      reload_queue("SIGHUP");
      last_status = status_text();
      notifier.ready(last_status);
      do_signals();
      return;
    }
    log::notice(std::string("received ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                "; shutting down");
    shutdown();
  });
}

void App::Impl::shutdown() {
  if (stopping) return;
  stopping = true;
  // systemd now gives us TimeoutStopSec (shorter than WatchdogSec) to drain; pings stop here.
  notifier.stopping("stopping: committing the last batch");
  // Stop producing, then commit what was produced; the loop ends when no work is left.
  driver.cancel();
  server.stop();
  watcher.cancel();
  flush_timer.cancel();
  expire_timer.cancel();
  watchdog_timer.cancel();
  status_timer.cancel();
  boost::system::error_code ignored;
  signals.cancel(ignored);
  final_flush_ok = flush_store();
  if (final_flush_ok) {
    log::notice("last batch committed; bye");
  } else {
    log::error("the last batch could not be committed; its steps will be replayed on restart");
  }
}

App::App(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
App::~App() = default;

Result<std::unique_ptr<App>> App::create(const config::DaemonConfig& config,
                                         const std::filesystem::path& config_path) {
  store::StoreOptions options;
  options.path = config.database;
  options.synchronous = to_store(config.store.synchronous);
  options.busy_timeout = config.store.busy_timeout;
  options.cache_bytes = config.store.cache_bytes;
  options.max_pending_rows = config.store.max_pending_rows;
  auto opened = store::SqliteJobStore::open(options);
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

  auto impl = std::make_unique<Impl>(config, std::move(*opened), std::move(token->token));
  if (auto restored = impl->restore_jobs(); !restored) return restored.error();
  impl->load_queue("start-up");
  auto port = impl->server.listen();
  if (!port) return port.error();
  log::notice("listening on http://" + config.listen_host + ":" + std::to_string(*port) +
              " (/metrics, /api/v1/jobs, /ws)");
  return std::unique_ptr<App>(new App(std::move(impl)));
}

int App::run() {
  auto& impl = *impl_;
  impl.do_signals();
  impl.do_flush_timer();
  impl.do_expire_timer();
  if (auto problem = impl.watcher.start(); !problem.empty()) {
    log::warning("queue file changes will be picked up on SIGHUP only: " + problem);
  }
  impl.driver.rearm();
  log::notice("vapord running: " + std::to_string(impl.scheduler.jobs().size()) + " jobs, " +
              std::to_string(impl.scheduler.running_count()) + " running");
  if (impl.notifier.enabled()) {
    // The port is bound, the store open and the queue loaded (or its errors logged: the daemon
    // serves anyway, /readyz says 503 and STATUS= says why), so start-up is over.
    impl.last_status = impl.status_text();
    impl.notifier.ready(impl.last_status);
    if (const auto period = impl.notifier.watchdog_period()) impl.do_watchdog_timer(*period);
    impl.do_status_timer();
  }
  impl.ioc.run();
  return impl.final_flush_ok ? 0 : 1;
}

void App::stop() { impl_->shutdown(); }

}  // namespace vapor::app
