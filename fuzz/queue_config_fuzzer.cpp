// The queue file and vapord.yaml parsers (one YAML front end, two validators): never crash, every
// error located in the named file, nothing kept from a file with errors, and every accepted job
// survives the store's JSON round trip unchanged.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/daemon_config.hpp"
#include "config/queue_file.hpp"
#include "core/job_spec.hpp"
#include "config_checks.hpp"

namespace vapor::fuzz {
namespace {

constexpr std::string_view file = "fuzz.yaml";

void fuzz_queue(std::string_view text) {
  const auto queue = config::parse_queue(text, file, {});
  check_errors(queue.errors, file);
  if (!queue.ok()) {
    check(queue.value.jobs.empty(), "a queue with errors still yields jobs");
    return;
  }
  for (const core::JobSpec& spec : queue.value.jobs) {
    check(core::is_valid_job_name(spec.name), "an accepted job has an invalid name: " + spec.name);
    check_round_trip(spec);
  }
}

void fuzz_daemon_config(std::string_view text) {
  const auto daemon = config::parse_daemon_config(text, file, "/");
  check_errors(daemon.errors, file);
  if (!daemon.ok()) {
    check(daemon.value == config::DaemonConfig{}, "a vapord.yaml with errors still yields values");
    return;
  }
  check(daemon.value.database.is_absolute() && daemon.value.queue.is_absolute(),
        "relative paths are not resolved against the config's folder");
}

}  // namespace
}  // namespace vapor::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  vapor::fuzz::fuzz_queue(text);
  vapor::fuzz::fuzz_daemon_config(text);
  return 0;
}
