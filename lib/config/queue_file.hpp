#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "core/job_spec.hpp"

namespace vapor::config {

/// Values a job spec takes when it does not say otherwise (from vapord.yaml).
struct SpecDefaults {
  std::chrono::milliseconds step_interval{1500};
  /// What a command job's relative `cwd` is resolved against (the queue file's folder); its
  /// default `cwd`. Empty: the current directory.
  std::filesystem::path base_dir{};
  /// All-digit names (`0003`) read as job ids in the API and vaporctl, so new jobs may not take
  /// them; restoring a job stored before this rule keeps its name.
  bool allow_numeric_names = false;
};

/// The jobs of a queue file (`jobs:` list), in file order, names unique.
struct QueueFile {
  std::vector<core::JobSpec> jobs;
};

/// Parses queue-file text. `file` labels errors.
[[nodiscard]] Parsed<QueueFile> parse_queue(std::string_view text, std::string_view file,
                                            const SpecDefaults& defaults);

/// Reads and parses a queue file, refusing one larger than `max_bytes`.
[[nodiscard]] Parsed<QueueFile> load_queue_file(const std::filesystem::path& path,
                                                const SpecDefaults& defaults,
                                                std::size_t max_bytes);

/// Parses one job spec given as JSON or YAML (an API request body, a stored spec).
/// `file` labels errors (e.g. "request body"); paths in errors start at the spec's keys.
[[nodiscard]] Parsed<core::JobSpec> parse_job_spec(std::string_view text, std::string_view file,
                                                   const SpecDefaults& defaults);

/// A spec as a JSON object with every field explicit (seed and step_interval included), so that
/// parsing it back gives an equal spec whatever the defaults are then.
[[nodiscard]] std::string job_spec_to_json(const core::JobSpec& spec);

}  // namespace vapor::config
