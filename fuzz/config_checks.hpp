#pragma once

// The checks every config parse must pass, for the fuzz targets of lib/config (they link it).

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "config/queue_file.hpp"
#include "core/job_spec.hpp"
#include "fuzz_check.hpp"

namespace vapor::fuzz {

/// Every error names the file it was given, a location that is not negative and a message.
inline void check_errors(const std::vector<config::ConfigError>& errors, std::string_view file) {
  for (const config::ConfigError& error : errors) {
    check(error.file == file, "an error names another file: " + error.to_string());
    check(error.line >= 0 && error.column >= 0, "an error has a negative location: " +
                                                    error.to_string());
    check(!error.message.empty(), "an error has no message: " + error.to_string());
  }
}

/// A spec the parser accepted is stored as JSON (job_spec_to_json) and read back at restart
/// (parse_job_spec): that must give the same spec, whatever the defaults are then.
inline void check_round_trip(const core::JobSpec& spec) {
  const std::string json = config::job_spec_to_json(spec);
  const config::SpecDefaults other_defaults{std::chrono::milliseconds(4321)};
  const auto reparsed = config::parse_job_spec(json, "stored spec", other_defaults);
  check(reparsed.ok(), "a stored spec does not parse back: " + json + "\n" +
                           config::format_errors(reparsed.errors));
  check(reparsed.value == spec, "a stored spec parses back to another spec: " + json +
                                    "\nwhich serialises again as " +
                                    config::job_spec_to_json(reparsed.value));
}

}  // namespace vapor::fuzz
