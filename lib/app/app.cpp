#include "app/app.hpp"

#include <csignal>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/queue_watcher.hpp"
#include "config/queue_file.hpp"
#include "runtime/clock.hpp"
#include "runtime/job_logger.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/scheduler_driver.hpp"
#include "store/sqlite_job_store.hpp"
#include "support/log.hpp"

namespace vapor::app {
namespace asio = boost::asio;

namespace {

store::Synchronous to_store(config::SynchronousMode mode) {
  switch (mode) {
    case config::SynchronousMode::off: return store::Synchronous::off;
    case config::SynchronousMode::normal: return store::Synchronous::normal;
    case config::SynchronousMode::full: return store::Synchronous::full;
    case config::SynchronousMode::extra: return store::Synchronous::extra;
  }
  return store::Synchronous::normal;
}

}  // namespace

struct App::Impl {
  Impl(const config::DaemonConfig& daemon_config, std::unique_ptr<store::SqliteJobStore> job_store)
      : config(daemon_config),
        store(std::move(job_store)),
        scheduler(runtime::SchedulerOptions{config.scheduler.max_concurrent,
                                            config.scheduler.stall_timeout,
                                            config.scheduler.max_jobs},
                  clock),
        logger(scheduler),
        driver(ioc.get_executor(), scheduler),
        flush_timer(ioc),
        signals(ioc, SIGINT, SIGTERM, SIGHUP),
        watcher(ioc.get_executor(), config.queue, [this] { reload_queue("the file changed"); }) {
    scheduler.add_listener(*store);
    scheduler.add_listener(logger);
  }

  Result<void> restore_jobs();
  /// Loads the queue file and adds its new jobs; all or nothing. Returns false on failure.
  bool load_queue(std::string_view why);
  void reload_queue(std::string_view why);
  void do_flush_timer();
  bool flush_store();
  void do_signals();
  void stop();

  config::DaemonConfig config;
  asio::io_context ioc{1};
  runtime::SystemClock clock;
  std::unique_ptr<store::SqliteJobStore> store;
  runtime::Scheduler scheduler;
  runtime::JobLogger logger;
  runtime::SchedulerDriver driver;
  asio::steady_timer flush_timer;
  asio::signal_set signals;
  QueueWatcher watcher;
  core::JobId next_id = 1;
  bool last_reload_successful = false;
  std::size_t failed_flushes = 0;
  bool stopping = false;
  bool final_flush_ok = true;
};

Result<void> App::Impl::restore_jobs() {
  auto stored = store->load_jobs();
  if (!stored) return stored.error();
  const config::SpecDefaults defaults{config.scheduler.step_interval};
  std::size_t resumed = 0;
  for (auto& row : *stored) {
    next_id = std::max(next_id, row.id + 1);
    auto spec = config::parse_job_spec(row.spec_json, "job " + std::to_string(row.id) + " in " +
                                                          config.database.string(),
                                       defaults);
    if (!spec.ok()) {
      log::error("cannot restore job " + std::to_string(row.id) + " '" + row.name +
                 "'; its history stays in the database: " + config::format_errors(spec.errors));
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
    if (row.step > 0) {
      auto last = store->load_points(row.id, row.step - 1, 1);
      if (last && !last->empty()) {
        job.loss = last->front().loss;
        job.accuracy = last->front().accuracy;
      }
    }
    if (job.state == core::JobState::running) {
      ++resumed;
      log::notice("job " + std::to_string(job.id) + " " + job.spec.name + ": resuming after step " +
                  std::to_string(job.step));
    }
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
    return false;
  }
  std::vector<core::JobSpec> fresh;
  for (auto& spec : queue.value.jobs) {
    const runtime::Job* existing = scheduler.find(spec.name);
    if (existing == nullptr) {
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
    return false;
  }
  const auto now = clock.wall_now();
  for (auto& spec : fresh) {
    const auto id = next_id++;
    store->add_job({id, spec.name, config::job_spec_to_json(spec), now});
    log::notice("job " + std::to_string(id) + " " + spec.name + ": queued (" + spec.model + ", " +
                std::to_string(spec.total_steps()) + " steps" +
                (spec.start == core::StartMode::manual ? ", manual start" : "") + ")");
    if (auto added = scheduler.add_job(id, std::move(spec), now); !added) {
      log::error(added.error().message);
    }
  }
  log::info("queue " + config.queue.string() + " loaded (" + std::string(why) + "): " +
            std::to_string(queue.value.jobs.size()) + " jobs in file, " +
            std::to_string(fresh.size()) + " new");
  last_reload_successful = true;
  driver.rearm();
  return true;
}

void App::Impl::reload_queue(std::string_view why) {
  if (stopping) return;
  load_queue(why);
}

bool App::Impl::flush_store() {
  auto flushed = store->flush();
  if (!flushed) {
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

void App::Impl::do_signals() {
  signals.async_wait([this](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    if (signal_number == SIGHUP) {
      reload_queue("SIGHUP");
      do_signals();
      return;
    }
    log::notice(std::string("received ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") +
                "; shutting down");
    stop();
  });
}

void App::Impl::stop() {
  if (stopping) return;
  stopping = true;
  // Stop producing, then commit what was produced; the loop ends when no work is left.
  driver.cancel();
  watcher.cancel();
  flush_timer.cancel();
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
  options.max_pending_rows = config.store.max_pending_rows;
  auto opened = store::SqliteJobStore::open(options);
  if (!opened) return opened.error();
  log::info("store " + config.database.string() + " open (config " + config_path.string() + ")");

  auto impl = std::make_unique<Impl>(config, std::move(*opened));
  if (auto restored = impl->restore_jobs(); !restored) return restored.error();
  impl->load_queue("start-up");
  return std::unique_ptr<App>(new App(std::move(impl)));
}

int App::run() {
  auto& impl = *impl_;
  impl.do_signals();
  impl.do_flush_timer();
  if (auto problem = impl.watcher.start(); !problem.empty()) {
    log::warning("queue file changes will be picked up on SIGHUP only: " + problem);
  }
  impl.driver.rearm();
  log::notice("vapord running: " + std::to_string(impl.scheduler.jobs().size()) + " jobs, " +
              std::to_string(impl.scheduler.running_count()) + " running");
  impl.ioc.run();
  return impl.final_flush_ok ? 0 : 1;
}

void App::stop() { impl_->stop(); }

}  // namespace vapor::app
