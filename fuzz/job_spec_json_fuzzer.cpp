// The job-spec parser as POST /api/v1/jobs uses it (JSON, or YAML: one parser reads both): never
// crash, every error located in "request body", and an accepted spec survives the store's JSON
// round trip unchanged.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/queue_file.hpp"
#include "core/job_spec.hpp"
#include "config_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vapor;
  constexpr std::string_view file = "request body";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = config::parse_job_spec(text, file, {});
  fuzz::check_errors(parsed.errors, file);
  if (!parsed.ok()) {
    fuzz::check(parsed.value == core::JobSpec{}, "a spec with errors still yields values");
    return 0;
  }
  fuzz::check(core::is_valid_job_name(parsed.value.name),
              "an accepted spec has an invalid name: " + parsed.value.name);
  fuzz::check_round_trip(parsed.value);
  return 0;
}
