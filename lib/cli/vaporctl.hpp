#pragma once

#include <iosfwd>
#include <span>
#include <string_view>

namespace vapor::cli {

/// Exit codes scripts can rely on.
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int failed = 1;        ///< a watched job failed, or vapord refused the request
inline constexpr int usage = 2;         ///< bad arguments or an invalid spec file
inline constexpr int unreachable = 3;   ///< vapord could not be reached
inline constexpr int not_found = 4;     ///< no such job
inline constexpr int conflict = 5;      ///< the job's state forbids it (409), or the name is taken
inline constexpr int unauthorized = 6;  ///< missing or wrong API token
}  // namespace exit_code

/// Terminal facts `watch` needs; main fills them from isatty/ioctl.
struct Terminal {
  bool is_tty = false;
  std::size_t width = 80;
};

/// vaporctl: `jobs`, `show JOB`, `start JOB`, `stop JOB`, `submit FILE`, `events JOB`,
/// `watch [JOB...]`, with `--url`, `--token-file` and `--output json|table`. Writes results to
/// `out` and problems to `err`; returns the exit code.
int run_vaporctl(std::span<const std::string_view> args, std::ostream& out, std::ostream& err,
                 const Terminal& terminal);

}  // namespace vapor::cli
