#include "app/command_line.hpp"

#include <iostream>

#include "app/app.hpp"
#include "app/build_revision.hpp"
#include "config/daemon_config.hpp"
#include "config/queue_file.hpp"
#include "support/log.hpp"

namespace vapor::app {

Result<CommandLine> parse_command_line(std::span<const std::string_view> args) {
  CommandLine command;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto arg = args[i];
    if (arg == "--config" || arg == "-c") {
      if (i + 1 == args.size()) return fail(std::string(arg) + " needs a file path");
      command.config = std::string(args[++i]);
    } else if (arg.starts_with("--config=")) {
      command.config = std::string(arg.substr(9));
    } else if (arg == "--check-config") {
      command.action = CommandLine::Action::check_config;
    } else if (arg == "--version" || arg == "-V") {
      command.action = CommandLine::Action::version;
    } else if (arg == "--help" || arg == "-h") {
      command.action = CommandLine::Action::help;
    } else {
      return fail("unknown argument '" + std::string(arg) + "' (try --help)");
    }
  }
  return command;
}

std::string usage_text() {
  return "Usage: vapord [--config FILE] [--check-config] [--version] [--help]\n"
         "\n"
         "Runs simulated training jobs from a YAML queue, records every step in SQLite and\n"
         "publishes them to Prometheus, a JSON API and a WebSocket feed.\n"
         "\n"
         "  -c, --config FILE   daemon configuration (default /etc/vapor/vapord.yaml)\n"
         "      --check-config  validate the configuration and its queue file, print every\n"
         "                      error as file:line:column: key: problem, and exit\n"
         "  -V, --version       print the version and exit\n"
         "  -h, --help          print this help and exit\n"
         "\n"
         "Signals: SIGHUP re-reads the queue file; SIGTERM or SIGINT commits the last batch\n"
         "and exits.\n";
}

std::string version_text() {
  return std::string("vapord ") + VAPOR_VERSION + " (revision " + VAPOR_REVISION + ")\n";
}

int check_config(const std::filesystem::path& config_path) {
  auto daemon = config::load_daemon_config(config_path);
  if (!daemon.ok()) {
    std::cerr << config::format_errors(daemon.errors);
    std::cerr << config_path.string() << ": " << daemon.errors.size()
              << " error(s); the queue file was not checked\n";
    return 1;
  }
  const config::SpecDefaults defaults{daemon.value.scheduler.step_interval};
  auto queue = config::load_queue_file(daemon.value.queue, defaults, daemon.value.queue_max_bytes);
  if (!queue.ok()) {
    std::cerr << config::format_errors(queue.errors);
    std::cerr << daemon.value.queue.string() << ": " << queue.errors.size() << " error(s)\n";
    return 1;
  }
  std::cout << config_path.string() << ": ok; queue " << daemon.value.queue.string() << ": "
            << queue.value.jobs.size() << " jobs ok\n";
  return 0;
}

int run_daemon(const std::filesystem::path& config_path) {
  auto daemon = config::load_daemon_config(config_path);
  if (!daemon.ok()) {
    for (const auto& error : daemon.errors) log::error(error.to_string());
    log::error("vapord not started: " + config_path.string() + " has " +
               std::to_string(daemon.errors.size()) + " error(s)");
    return 2;
  }
  auto app = App::create(daemon.value, config_path);
  if (!app) {
    log::error("vapord not started: " + app.error().message);
    return 1;
  }
  return (*app)->run();
}

}  // namespace vapor::app
