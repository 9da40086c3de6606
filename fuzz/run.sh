#!/usr/bin/env bash
# Builds the fuzz preset and runs each libFuzzer target (all, or those named) for a while on its
# seed corpus, then prints one summary line per target. Exits 1 if any target hit a crash, a leak,
# a timeout, an out-of-memory or a broken invariant; the input is kept under
# build/fuzz/fuzz-artifacts/<target>/ and the log (with the stack) under build/fuzz/fuzz-logs/.
#
#   fuzz/run.sh --seconds 20 [--jobs N] [TARGET...]     the short pass scripts/test.sh runs: each
#                                                       target works on a temporary copy of its
#                                                       seeds, so the source tree is never written
#   fuzz/run.sh --seconds 600 --corpus-dir DIR          the long run (bench/fuzz): grown corpora
#                                                       are kept in DIR/<target>/ for the next run
#
# Targets: queue_config job_spec_json router subscription metric_line point_batch
# (fuzz/<target>_fuzzer.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(queue_config job_spec_json router subscription metric_line point_batch)
seconds=20
corpus_root=""
jobs=$(nproc)
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --corpus-dir) corpus_root="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "fuzz/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *)
      if [[ ! " ${all_targets[*]} " =~ " $1 " ]]; then
        echo "fuzz/run.sh: no target '$1'; the targets are: ${all_targets[*]}" >&2
        exit 2
      fi
      targets+=("$1"); shift ;;
  esac
done
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz/run.sh: --seconds takes a positive whole number, not '$seconds'" >&2
  exit 2
fi
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")

echo "== fuzz: configure and build"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"

build=build/fuzz
scratch=""
if [[ -z "$corpus_root" ]]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  corpus_root=$scratch
fi
mkdir -p "$build/fuzz-logs"

# The last value of `key: N` in a libFuzzer log (0 when absent).
last_value() { grep -aoE "$1:[[:space:]]*[0-9]+" "$2" | tail -1 | grep -oE '[0-9]+$' || echo 0; }

summary=()
failed=0
for target in "${targets[@]}"; do
  echo "== fuzz: $target for ${seconds}s"
  corpus="$corpus_root/$target"
  artifacts="$build/fuzz-artifacts/$target"
  log="$build/fuzz-logs/$target.log"
  mkdir -p "$corpus" "$artifacts"
  # The short pass copies the seeds; the long run reads them in place (libFuzzer writes new inputs
  # only to the first corpus folder) so that edited seeds are picked up.
  seeds=()
  if [[ -n "$scratch" ]]; then
    cp fuzz/corpus/"$target"/* "$corpus"/
  else
    seeds=(fuzz/corpus/"$target")
  fi
  before=$(find "$corpus" -type f | wc -l)
  marker=$(mktemp)
  status=0
  "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -dict="fuzz/dict/$target.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "$corpus" "${seeds[@]}" >"$log" 2>&1 || status=$?

  executions=$(last_value 'stat::number_of_executed_units' "$log")
  per_second=$(last_value 'stat::average_exec_per_sec' "$log")
  rss=$(last_value 'stat::peak_rss_mb' "$log")
  coverage=$(last_value 'cov' "$log")
  features=$(last_value 'ft' "$log")
  after=$(find "$corpus" -type f | wc -l)
  found=$(find "$artifacts" -type f -newer "$marker" | sort)
  rm -f "$marker"
  crashes=$(printf '%s' "$found" | grep -c . || true)
  if [[ $status -ne 0 ]]; then
    failed=1
    echo "!! $target failed (exit $status): $(grep -a -m1 -E '^(==[0-9]+==ERROR|SUMMARY|fuzz invariant)' "$log" || echo 'see the log')"
    grep -a -m1 -A40 -E '(==[0-9]+==ERROR|runtime error|fuzz invariant|deadly signal)' "$log" || tail -40 "$log"
    for input in $found; do
      echo "-- input $input (base64):"
      head -c 4096 "$input" | base64
    done
    echo "-- whole log: $log"
  fi
  summary+=("$(printf '%-14s %12s %9s %7s %8s %9s %8s %6s  %s' "$target" "$executions" \
    "$per_second" "$coverage" "$features" "$before->$after" "$rss" "$crashes" \
    "$([[ $status -eq 0 ]] && echo ok || echo "FAILED (exit $status)")")")
done

echo "== fuzz: summary (${seconds}s per target; logs in $build/fuzz-logs/)"
printf '%-14s %12s %9s %7s %8s %9s %8s %6s  %s\n' target executions exec/s cov features corpus \
  rss_mb crash result
printf '%s\n' "${summary[@]}"
exit "$failed"
