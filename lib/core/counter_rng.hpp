#pragma once

#include <cmath>
#include <cstdint>

namespace vapor::core {

/// A counter-based random source: every draw is a pure function of (seed, counter, stream), so
/// any step of a run can be recomputed on its own, in any order, after any restart.
/// Stateless; safe from any thread.
class CounterRng {
 public:
  explicit constexpr CounterRng(std::uint64_t seed) : seed_(seed) {}

  /// 64 well-mixed bits for (counter, stream).
  [[nodiscard]] constexpr std::uint64_t bits(std::uint64_t counter, std::uint64_t stream) const {
    return mix(seed_ ^ mix(counter * 0x9e3779b97f4a7c15ULL + mix(stream + 0x632be59bd9b4e019ULL)));
  }

  /// Uniform in [0, 1).
  [[nodiscard]] double uniform(std::uint64_t counter, std::uint64_t stream) const {
    return static_cast<double>(bits(counter, stream) >> 11) * 0x1.0p-53;
  }

  /// Standard normal (Box-Muller on two independent uniforms of the same counter).
  [[nodiscard]] double normal(std::uint64_t counter, std::uint64_t stream) const {
    const double u1 = 1.0 - uniform(counter, stream * 2 + 1);  // (0, 1]: log is finite
    const double u2 = uniform(counter, stream * 2 + 2);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
  }

 private:
  /// SplitMix64's finaliser: a bijection with full avalanche.
  static constexpr std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::uint64_t seed_;
};

}  // namespace vapor::core
