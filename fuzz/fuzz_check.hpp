#pragma once

// What every fuzz target shares: an invariant check that libFuzzer records as a crash (with the
// input that broke it). The config parsers' own checks are in config_checks.hpp.

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace vapor::fuzz {

/// Aborts with `what` when `holds` is false; libFuzzer saves the input as crash-<sha1>.
inline void check(bool holds, std::string_view what) {
  if (holds) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

}  // namespace vapor::fuzz
