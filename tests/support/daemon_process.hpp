#pragma once

// Test helpers that run the real vapord binary: a temp folder per test and a child process
// that is always reaped. Only processes started here are signalled, by their pid.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vapor::testing {

/// A fresh folder under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const {
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, const std::string& text);
[[nodiscard]] std::string read_file(const std::filesystem::path& path);

/// A child process with stdout and stderr sent to a log file. It inherits this process's
/// environment; each `NAME=value` in `environment` replaces (or adds) one variable, and a bare
/// `NAME` removes it.
class ChildProcess {
 public:
  ChildProcess(const std::filesystem::path& program, const std::vector<std::string>& args,
               const std::filesystem::path& log_file,
               const std::vector<std::string>& environment = {});
  ~ChildProcess();  ///< SIGKILLs and reaps the child if it is still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void signal(int signal_number) const;
  /// Waits up to `timeout` for the child to exit; its exit status (or 128 + signal), if it did.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

/// Runs a command to completion; returns its exit status and captured stdout + stderr.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::filesystem::path& program,
                          const std::vector<std::string>& args);

/// Path of the vapord binary under test.
[[nodiscard]] std::filesystem::path vapord_path();

}  // namespace vapor::testing
