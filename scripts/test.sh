#!/usr/bin/env bash
# README's second command (and what CI runs): installs what is missing, builds with warnings as
# errors, runs every test; then does the same under AddressSanitizer + UndefinedBehaviorSanitizer
# and under ThreadSanitizer (the event loop and the store thread), then the fuzzers' short pass.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test
jobs=$(nproc)

for preset in dev asan tsan; do
  echo "== $preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "== $preset: test"
  ctest --preset "$preset" -j "$jobs"
done
fuzz/run.sh --seconds 20 --jobs "$jobs"  # libFuzzer targets, 20 s each on a copy of fuzz/corpus/
