// vapord: parses its arguments, builds the daemon and returns its exit code.

#include <iostream>
#include <string_view>
#include <vector>

#include "app/command_line.hpp"

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const auto command = vapor::app::parse_command_line(args);
  if (!command) {
    std::cerr << "vapord: " << command.error().message << '\n';
    return 2;
  }
  using Action = vapor::app::CommandLine::Action;
  switch (command->action) {
    case Action::help: std::cout << vapor::app::usage_text(); return 0;
    case Action::version: std::cout << vapor::app::version_text(); return 0;
    case Action::check_config: return vapor::app::check_config(command->config);
    case Action::run: break;
  }
  try {
    return vapor::app::run_daemon(command->config);
  } catch (const std::exception& error) {
    std::cerr << "vapord: fatal: " << error.what() << '\n';
    return 1;
  }
}
