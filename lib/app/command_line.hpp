#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "support/result.hpp"

namespace vapor::app {

/// What `vapord` was asked to do.
struct CommandLine {
  enum class Action { run, check_config, version, help };
  Action action = Action::run;
  std::filesystem::path config = "/etc/vapor/vapord.yaml";
};

/// Parses vapord's arguments (without argv[0]); an unknown or incomplete option is an error.
[[nodiscard]] Result<CommandLine> parse_command_line(std::span<const std::string_view> args);

[[nodiscard]] std::string usage_text();
[[nodiscard]] std::string version_text();

/// `--check-config`: validates vapord.yaml and the queue file it names, printing every error to
/// stderr and a summary to stdout. Returns the process exit code (0 valid, 1 invalid).
int check_config(const std::filesystem::path& config_path);

/// Loads the config, builds the App and runs it. Returns the process exit code.
int run_daemon(const std::filesystem::path& config_path);

}  // namespace vapor::app
