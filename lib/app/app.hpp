#pragma once

#include <filesystem>
#include <memory>

#include "config/daemon_config.hpp"
#include "support/result.hpp"

namespace vapor::app {

/// The whole daemon: store, scheduler, queue watcher, signals and timers on one io_context.
/// Build it with `create`, then `run()` on the thread that will be the event loop; it returns
/// when a SIGTERM/SIGINT (or `stop()`) has drained everything. `stop()` may be called from the
/// event-loop thread only; other threads raise SIGTERM instead.
class App {
 public:
  /// Opens the store, restores jobs, loads the queue. Errors here are fatal startup errors.
  static Result<std::unique_ptr<App>> create(const config::DaemonConfig& config,
                                             const std::filesystem::path& config_path);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  /// Runs the event loop; returns the process exit code.
  int run();
  /// Begins a graceful shutdown: timers cancelled, last batch committed.
  void stop();

 private:
  struct Impl;
  explicit App(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vapor::app
