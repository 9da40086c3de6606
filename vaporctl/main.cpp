// vaporctl: parses nothing itself; hands its arguments and the terminal to the cli module.

#include <sys/ioctl.h>
#include <unistd.h>

#include <iostream>
#include <string_view>
#include <vector>

#include "cli/vaporctl.hpp"

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  vapor::cli::Terminal terminal;
  terminal.is_tty = ::isatty(STDOUT_FILENO) == 1;
  winsize size{};
  if (terminal.is_tty && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    terminal.width = size.ws_col;
  }
  return vapor::cli::run_vaporctl(args, std::cout, std::cerr, terminal);
}
