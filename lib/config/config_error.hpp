#pragma once

#include <string>
#include <vector>

namespace vapor::config {

/// One located problem in a configuration or queue file, printed as
/// `jobs.yaml:12:14: jobs[2].epochs: expected a positive integer, got "ten"`.
/// `line` and `column` are 1-based; 0 means "the whole file".
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;  ///< key path such as `jobs[2].epochs`; empty for file-level errors
  std::string message;

  [[nodiscard]] std::string to_string() const;
  bool operator==(const ConfigError&) const = default;
};

/// A parse outcome: a value when `errors` is empty. Every error is collected, not just the first.
template <class T>
struct Parsed {
  T value{};
  std::vector<ConfigError> errors;

  [[nodiscard]] bool ok() const { return errors.empty(); }
};

/// All errors, one per line.
[[nodiscard]] std::string format_errors(const std::vector<ConfigError>& errors);

}  // namespace vapor::config
