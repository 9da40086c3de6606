#!/usr/bin/env bash
# Vapor network benchmark: vapord's one Beast listener against peers measured in the same run,
# printed as one table of ratios.
#
#   1. GET /metrics with 1,000 and with 10,000 running jobs stepping (10,000 points/s in all):
#      wrk req/s and p99 against vapord, vs prometheus-pushgateway holding the same series
#      (vapord's own /metrics text, pushed once). Goal: vapord >= 2x the pushgateway's req/s.
#   2. GET /api/v1/jobs with 1,000 jobs, vs GET /healthz (a tiny static JSON) on the same daemon
#      (goal: >= 0.5), and in bytes/s vs GET /assets/uplot.js (a static file served from memory).
#   3. WebSocket fan-out: 1,000 jobs stepping every INTERVAL to N subscribers, for each case
#      INTERVAL:N of --cases (default 50ms:1 50ms:100 500ms:1000 100ms:1000: 20,000 points/s to
#      1 and to 100 subscribers, 2,000 points/s to 1,000 (2 M deliveries/s offered, more than ten
#      times what the peer manages), and 10,000 points/s to 1,000 (10 M/s offered, 2 GB/s: more
#      than this machine can move, to show what each server does when it cannot keep up)):
#      deliveries/s over a fixed window and p99 step-to-client latency (a point's `ts` vs its
#      arrival, same clock), vs bench/ws_broadcast_peer.py, a python3-websockets broadcast()
#      server producing the same stream (same rate, same JSON sizes). Goal: vapord >= 10x the
#      peer's deliveries/s. Also shown: how many subscribers are still connected at the end, and
#      the rate from "all connected" until the first one is lost.
#
# The WebSocket client is bench/ws_load_client (C++: a Beast upgrade, then frames split from large
# reads; one thread, built from bench/CMakeLists.txt), not Python: a python3-websockets client measured on this box needs a
# whole core for ~150k messages/s, which is about what the servers send, so it would cap both.
# Each run reports the client's CPU use and the bytes left unread in its sockets (sampled every
# 100 ms); a client that keeps up leaves next to nothing there, so a run with little unread data
# was limited by the server.
#
# Bench-only tools, Debian 12 (not in scripts/install-deps.sh):
#   apt-get install -y wrk prometheus-pushgateway python3-websockets
# Builds vapord and ws_load_client (release preset, -j1) when they are missing.
#
# Usage: bench/network_bench.sh [--seconds S] [--cases "50ms:1 50ms:100 500ms:1000 100ms:1000"]
#                               [--metrics-jobs "1000 10000"]
#                               [--only http|ws] [--build-dir DIR] [--keep]
# Servers run on CPU 0 and load generators on CPU 1 (taskset) when nproc >= 2. Everything listens
# on 127.0.0.1; every load run is bounded: wrk S seconds; WebSocket: connect (at most 15 s) +
# 2 s warm-up + S seconds (S = 10 by default). The whole script takes about 3 minutes.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(dirname "$here")
build_dir="$source_dir/build/release"
run_seconds=10
warmup_seconds=2
feed_cases="50ms:1 50ms:100 500ms:1000 100ms:1000"
metrics_interval=100ms
jobs=1000
metrics_jobs="1000 10000"
sections="http ws"
keep=0
python=/usr/bin/python3   # Debian's interpreter, where python3-websockets lives

while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) run_seconds=$2; shift 2 ;;
    --cases) feed_cases=$2; shift 2 ;;
    --metrics-jobs) metrics_jobs=$2; shift 2 ;;
    --only)
      [[ "$2" == http || "$2" == ws ]] || { echo "network_bench.sh: --only takes http or ws" >&2; exit 2; }
      sections=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "network_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for case in $feed_cases; do
  [[ "$case" =~ ^[0-9]+ms:[0-9]+$ ]] ||
    { echo "network_bench.sh: --cases takes INTERVAL:SUBSCRIBERS pairs, e.g. \"50ms:100 500ms:1000\"" >&2; exit 2; }
done
if (( run_seconds > 25 )); then
  echo "network_bench.sh: --seconds $run_seconds: keep each load run under ~30 s" >&2
  exit 2
fi

say() { printf '[network_bench] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
"$python" -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
command -v curl >/dev/null || missing+=(curl)
if (( ${#missing[@]} )); then
  die "missing ${missing[*]}: apt-get install -y ${missing[*]}"
fi

vapord="$build_dir/daemon/vapord"
client="$build_dir/bench/ws_load_client"
if [[ ! -x "$vapord" || ! -x "$client" ]]; then
  say "building vapord and ws_load_client (release, -j1)"
  (cd "$source_dir" && cmake --preset release >/dev/null &&
     cmake --build --preset release -j1 --target vapord ws_load_client >/dev/null)
fi

# --- CPUs, limits, clean-up ------------------------------------------------------------------
if (( $(nproc) >= 2 )); then
  server_cpu=0
  load_cpu=1
  pin_server=(taskset -c "$server_cpu")
  pin_load=(taskset -c "$load_cpu")
  pinning="servers on CPU $server_cpu, load generators on CPU $load_cpu"
else
  pin_server=()
  pin_load=()
  pinning="1 CPU: servers and load generators share it (no pinning)"
fi
# 1,000 WebSocket clients need ~1,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) >= 4096 )) || say "warning: ulimit -n is $(ulimit -n); 1,000 subscribers may fail"

work=$(mktemp -d /tmp/vapor-network-bench.XXXXXX)
started_pids=()
cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${started_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  if (( keep )); then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Stops one process we started: SIGTERM, then SIGKILL after 10 s. Sets stopped_status to its exit
# status ("killed" if it had to be) and forgets its pid.
stop_pid() {
  local pid=$1 kept=() other
  stopped_status=0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    stopped_status=killed
    wait "$pid" 2>/dev/null || true
  else
    wait "$pid" 2>/dev/null || stopped_status=$?
  fi
  for other in "${started_pids[@]}"; do [[ "$other" == "$pid" ]] || kept+=("$other"); done
  started_pids=("${kept[@]}")
}

# Peak resident memory of process PID, in MiB.
peak_rss_mib() {
  awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"
}

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- vapord ------------------------------------------------------------------------------------
# start_vapord DIR STEP_INTERVAL [COUNT]: COUNT (default 1,000) jobs of 1,000 x 1,000 steps (they
# never finish here). Sets vapord_pid and vapord_port; returns once every job is running and has
# stepped.
start_vapord() {
  local dir=$1 interval=$2 jobs=${3:-$jobs}
  mkdir -p "$dir"
  {
    echo "jobs:"
    for ((i = 1; i <= jobs; i++)); do
      echo "  - {name: bench-$i, epochs: 1000, steps_per_epoch: 1000, step_interval: $interval}"
    done
  } >"$dir/jobs.yaml"
  cat >"$dir/vapord.yaml" <<EOF
listen: 127.0.0.1:0
database: $dir/vapor.db
queue: $dir/jobs.yaml
scheduler: {max_concurrent: $jobs, step_interval: 100ms, max_jobs: 20000}
store: {flush_interval: 1s}
websocket: {max_clients: 2000}
api: {max_connections: 4000}
EOF
  "${pin_server[@]}" "$vapord" --config "$dir/vapord.yaml" >"$dir/vapord.log" 2>&1 &
  vapord_pid=$!
  started_pids+=("$vapord_pid")
  vapord_port=""
  for _ in $(seq 200); do
    vapord_port=$(grep -oP 'listening on http://127\.0\.0\.1:\K[0-9]+' "$dir/vapord.log" | tail -1 || true)
    [[ -n "$vapord_port" ]] && break
    kill -0 "$vapord_pid" 2>/dev/null || die "vapord exited: $(tail -5 "$dir/vapord.log")"
    sleep 0.1
  done
  [[ -n "$vapord_port" ]] || die "vapord did not listen within 20 s: $(tail -5 "$dir/vapord.log")"
  local running=0 stepped=0
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$vapord_port/metrics" >"$dir/scrape.txt" || true
    running=$(awk '/^vapor_jobs\{state="running"\}/ {print $2}' "$dir/scrape.txt")
    stepped=$(awk '/^vapor_job_step\{/ && $2 > 0 {n++} END {print n + 0}' "$dir/scrape.txt")
    [[ "${running:-0}" == "$jobs" && "$stepped" == "$jobs" ]] && return 0
    sleep 0.1
  done
  die "vapord: $running of $jobs jobs running, $stepped stepped after 20 s"
}

# Log lines of a run that are neither per-job progress nor start-up notices.
vapord_complaints() {
  grep -E ' (warning|error|critical|alert|emerg): ' "$1" | grep -v ': job [0-9]' | head -5 || true
}

# Sum of vapor_job_step over every job (the steps vapord has produced).
total_steps() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '/^vapor_job_step\{/ {s += $2} END {printf "%d", s}'
}

# --- wrk -------------------------------------------------------------------------------------
# CPU seconds (user + system) that process PID has used so far.
cpu_seconds_of() {
  awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"
}

# "busy total" jiffies of every CPU, one line each (busy excludes idle and iowait).
cpu_jiffies() {
  awk '/^cpu[0-9]/ {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat
}

# Busy share of each CPU between two cpu_jiffies snapshots, comma-separated.
cpu_busy_between() {
  paste -d' ' <(echo "$1") <(echo "$2") |
    awk '{printf "%s%.2f", (NR > 1 ? "," : ""), ($4 - $2 > 0 ? ($3 - $1) / ($4 - $2) : 0)} END {print ""}'
}

# wrk_run NAME URL SERVER_PID: keep-alive, 1 thread, 16 connections, 30 s timeout (the
# pushgateway takes seconds per 10,000-job scrape; a shorter timeout would drop its slow answers
# from its count); writes NAME.wrk and prints
# "requests_per_second p99_ms errors server_cpu_ratio wrk_cpu_ratio cpu_busy_list".
wrk_run() {
  local name=$1 url=$2 server_pid=$3 cpu_before cpu_after jiffies_before jiffies_after
  jiffies_before=$(cpu_jiffies)
  cpu_before=$(cpu_seconds_of "$server_pid")
  # `times` after wrk: its second line is the CPU time of the shell's children (wrk).
  "${pin_load[@]}" timeout $((run_seconds + 15)) bash -c \
    'wrk -t1 -c16 -d"$1s" --timeout 30s --latency "$2"; times' _ "$run_seconds" "$url" \
    >"$work/$name.wrk" 2>&1 || true
  cpu_after=$(cpu_seconds_of "$server_pid")
  jiffies_after=$(cpu_jiffies)
  awk -v busy="$(cpu_busy_between "$jiffies_before" "$jiffies_after")" -v seconds="$run_seconds" \
      -v server_cpu="$(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN {print b - a}')" '
    function ms(v) {
      if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000;
      if (v ~ /s$/) return v * 1000; return v
    }
    function secs(v,   parts) { split(v, parts, /[ms]/); return parts[1] * 60 + parts[2] }
    /Requests\/sec:/ {rps = $2}
    /^ +99%/ {p99 = ms($2)}
    /Non-2xx/ {errors += $NF}
    /Socket errors/ {gsub(/,/, ""); errors += $4 + $6 + $8 + $10}
    /^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$/ {times_line++; if (times_line == 2) wrk_cpu = secs($1) + secs($2)}
    END {
      printf "%s %s %d %.2f %.2f %s\n", (rps == "" ? 0 : rps), (p99 == "" ? -1 : p99), errors,
             server_cpu / seconds, wrk_cpu / seconds, busy
    }
  ' "$work/$name.wrk"
}

results="$work/results"
: >"$results"
record() { printf '%s=%s\n' "$1" "$2" >>"$results"; }

say "work folder $work; $pinning; ${run_seconds}s per load run"
record load_before "$(cut -d' ' -f1-3 /proc/loadavg)"
record vapord_version "$("$vapord" --version 2>&1 | head -1)"

# measure KEY URL PID: wrk on URL against server PID, recorded as KEY_rps, KEY_p99, KEY_errors,
# KEY_cpu, KEY_wrk_cpu and KEY_busy.
measure() {
  local rps p99 errors server_cpu wrk_cpu busy
  read -r rps p99 errors server_cpu wrk_cpu busy < <(wrk_run "${1//_/-}" "$2" "$3")
  record "${1}_rps" "$rps"; record "${1}_p99" "$p99"; record "${1}_errors" "$errors"
  record "${1}_cpu" "$server_cpu"; record "${1}_wrk_cpu" "$wrk_cpu"; record "${1}_busy" "$busy"
}

# --- 1 and 2: /metrics, /api/v1/jobs, /healthz -------------------------------------------------
# http_section N: vapord with N jobs (10,000 points/s in all), wrk on /metrics; at the feed's job
# count also /api/v1/jobs and /healthz; then the pushgateway holding the same series.
http_section() {
  local n=$1 interval=$(( $1 / 10 ))ms
  say "HTTP: starting vapord with $n jobs stepping every $interval"
  start_vapord "$work/http-$n" "$interval" "$n"
  local http_port=$vapord_port http_pid=$vapord_pid
  sleep 2  # a few store commits in, as in steady state

  curl -sf "http://127.0.0.1:$http_port/metrics" >"$work/vapord-metrics-$n.txt"
  record "metrics_series_$n" "$(grep -c '^vapor_' "$work/vapord-metrics-$n.txt")"
  record "metrics_bytes_$n" "$(wc -c <"$work/vapord-metrics-$n.txt")"

  say "HTTP: wrk GET /metrics on vapord ($n jobs stepping)"
  measure "vapord_metrics_$n" "http://127.0.0.1:$http_port/metrics" "$http_pid"

  if [[ "$n" == "$jobs" ]]; then
    say "HTTP: wrk GET /api/v1/jobs on vapord"
    measure "jobs" "http://127.0.0.1:$http_port/api/v1/jobs" "$http_pid"
    record jobs_bytes "$(curl -sf "http://127.0.0.1:$http_port/api/v1/jobs" | wc -c)"

    say "HTTP: wrk GET /assets/uplot.js on vapord (a static file of the live page)"
    measure "static" "http://127.0.0.1:$http_port/assets/uplot.js" "$http_pid"
    record static_bytes "$(curl -sf "http://127.0.0.1:$http_port/assets/uplot.js" | wc -c)"

    say "HTTP: wrk GET /healthz on vapord"
    measure "healthz" "http://127.0.0.1:$http_port/healthz" "$http_pid"
  fi

  commit_stats=$(curl -sf "http://127.0.0.1:$http_port/metrics" |
    awk '/^vapor_store_commit_duration_seconds_sum/ {s = $2} /^vapor_store_commit_duration_seconds_count/ {c = $2}
         END {printf "%d %.0f", c, (c ? s / c * 1000 : 0)}')
  record "http_${n}_commit_mean_ms" "${commit_stats#* }"
  record "http_${n}_rss" "$(peak_rss_mib "$http_pid")"
  stop_pid "$http_pid"; record "http_${n}_exit" "$stopped_status"
  record "http_${n}_complaints" "$(vapord_complaints "$work/http-$n/vapord.log" | tr '\n' '|')"

  say "HTTP: prometheus-pushgateway with vapord's series ($n jobs)"
  gateway_port=$(free_port)
  "${pin_server[@]}" prometheus-pushgateway --web.listen-address="127.0.0.1:$gateway_port" \
    >"$work/pushgateway-$n.log" 2>&1 &
  gateway_pid=$!
  started_pids+=("$gateway_pid")
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$gateway_port/-/ready" >/dev/null && break
    sleep 0.1
  done
  status=$(push "$work/vapord-metrics-$n.txt")
  if [[ "$status" != 2* ]]; then
    # The pushgateway refuses some metadata (HELP/TYPE it considers inconsistent): push the
    # samples without the comment lines of the families it names, and as a last resort without any.
    say "pushgateway refused the push ($status): $(head -c 300 "$work/push.out")"
    rejected=$(grep -oE 'vapor_[a-z_]+' "$work/push.out" | sort -u | paste -sd'|' || true)
    if [[ -n "$rejected" ]]; then
      grep -vE "^# (HELP|TYPE) ($rejected) " "$work/vapord-metrics-$n.txt" >"$work/pushed.txt"
    else
      grep -v '^#' "$work/vapord-metrics-$n.txt" >"$work/pushed.txt"
    fi
    status=$(push "$work/pushed.txt")
    [[ "$status" == 2* ]] || die "pushgateway refused the push again ($status): $(cat "$work/push.out")"
  fi
  curl -sf "http://127.0.0.1:$gateway_port/metrics" >"$work/gateway-metrics-$n.txt"
  record "gateway_series_$n" "$(grep -c '^vapor_' "$work/gateway-metrics-$n.txt")"
  record "gateway_bytes_$n" "$(wc -c <"$work/gateway-metrics-$n.txt")"

  say "HTTP: wrk GET /metrics on prometheus-pushgateway ($n jobs)"
  measure "gateway_metrics_$n" "http://127.0.0.1:$gateway_port/metrics" "$gateway_pid"
  stop_pid "$gateway_pid"
}

push() {
  curl -s -o "$work/push.out" -w '%{http_code}' --data-binary @"$1" \
    "http://127.0.0.1:$gateway_port/metrics/job/vapord"
}

if [[ " $sections " == *" http "* ]]; then
  for n in $metrics_jobs; do http_section "$n"; done
fi

# --- 3: WebSocket fan-out --------------------------------------------------------------------
# Sizes of vapord's hello and point messages, so that the peer sends as many bytes.
measure_feed() {
  "${pin_load[@]}" "$python" - "$1" <<'EOF'
import asyncio, os, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:%s/ws" % sys.argv[1], max_size=None,
                                  compression=None, open_timeout=10) as ws:
        hello = await ws.recv()
        sizes = []
        try:
            while len(sizes) < 2000:
                message = await ws.recv()
                if '"type":"point"' in message:
                    sizes.append(len(message))
        except websockets.ConnectionClosed:
            pass  # closed as a slow consumer: what was read is enough
        print(len(hello), round(sum(sizes) / max(1, len(sizes))), flush=True)
        os._exit(0)  # no close handshake: vapord may have a long queue in front of it
asyncio.run(asyncio.wait_for(main(), 20))
EOF
}

run_client() {  # run_client NAME PORT CONNECTIONS SERVER_PID
  "${pin_load[@]}" timeout 45 "$client" --port "$2" --connections "$3" \
    --warmup-seconds "$warmup_seconds" --seconds "$run_seconds" --connect-timeout-seconds 15 \
    --server-pid "$4" >"$work/$1.json" 2>"$work/$1.err" || true
  [[ -s "$work/$1.json" ]] || echo '{}' >"$work/$1.json"
}

hello_bytes=""
cases=()
[[ " $sections " == *" ws "* ]] || feed_cases=""
for case in $feed_cases; do cases+=("${case%:*}_${case#*:}"); done
for key in "${cases[@]}"; do
  interval=${key%_*}
  n=${key#*_}
  say "WS: vapord, $jobs jobs every $interval, $n subscribers"
  start_vapord "$work/ws-$key" "$interval"
  sleep 2  # into steady state: a few store commits behind it
  if [[ -z "$hello_bytes" ]]; then
    read -r hello_bytes point_bytes < <(measure_feed "$vapord_port")
    record hello_bytes "$hello_bytes"; record point_bytes "$point_bytes"
  fi
  steps_before=$(total_steps "$vapord_port"); t_before=$(date +%s.%N)
  run_client "vapord-ws-$key" "$vapord_port" "$n" "$vapord_pid"
  steps_after=$(total_steps "$vapord_port"); t_after=$(date +%s.%N)
  record "vapord_ws_${key}_points_per_second" \
    "$(awk -v a="$steps_before" -v b="$steps_after" -v s="$t_before" -v e="$t_after" 'BEGIN {printf "%.0f", (b - a) / (e - s)}')"
  curl -sf "http://127.0.0.1:$vapord_port/metrics" >"$work/ws-$key/after.txt" || true
  record "vapord_ws_${key}_disconnects" \
    "$(grep '^vapor_websocket_disconnects_total' "$work/ws-$key/after.txt" | sed 's/vapor_websocket_disconnects_total//' | tr '\n' ' ')"
  record "vapord_ws_${key}_commit_mean_ms" "$(awk '/^vapor_store_commit_duration_seconds_sum/ {s = $2} /^vapor_store_commit_duration_seconds_count/ {c = $2} END {printf "%.0f", (c ? s / c * 1000 : 0)}' "$work/ws-$key/after.txt")"
  record "vapord_ws_${key}_rss" "$(peak_rss_mib "$vapord_pid")"
  stop_pid "$vapord_pid"; record "vapord_ws_${key}_exit" "$stopped_status"
  record "vapord_ws_${key}_complaints" "$(vapord_complaints "$work/ws-$key/vapord.log" | tr '\n' '|')"

  say "WS: python3-websockets broadcast() peer, same feed, $n subscribers"
  "${pin_server[@]}" "$python" "$here/ws_broadcast_peer.py" --jobs "$jobs" \
    --step-interval-ms "${interval%ms}" --message-bytes "$point_bytes" \
    --hello-bytes "$hello_bytes" >"$work/peer-$key.log" 2>&1 &
  peer_pid=$!
  started_pids+=("$peer_pid")
  peer_port=""
  for _ in $(seq 100); do
    peer_port=$(grep -oP 'listening on ws://127\.0\.0\.1:\K[0-9]+' "$work/peer-$key.log" || true)
    [[ -n "$peer_port" ]] && break
    sleep 0.1
  done
  [[ -n "$peer_port" ]] || die "ws_broadcast_peer.py did not start: $(tail -5 "$work/peer-$key.log")"
  run_client "peer-ws-$key" "$peer_port" "$n" "$peer_pid"
  record "peer_ws_${key}_rss" "$(peak_rss_mib "$peer_pid")"
  stop_pid "$peer_pid"
done

# --- the table -------------------------------------------------------------------------------
record load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
"$python" - "$results" "$work" "$run_seconds" "$feed_cases" "$jobs" "$pinning" \
  "$([[ " $sections " == *" http "* ]] && echo "$metrics_jobs")" <<'EOF'
import json, os, sys

results_path, work, seconds, feed_cases, jobs, pinning, metrics_jobs = sys.argv[1:]
cases = [tuple(case.split(":")) for case in feed_cases.split()]

def load(name):
    try:
        return json.load(open(os.path.join(work, name)))
    except (OSError, ValueError):
        return {}
r = {}
for line in open(results_path):
    key, _, value = line.rstrip("\n").partition("=")
    r[key] = value

def num(key, default=0.0):
    try:
        return float(r.get(key, default))
    except ValueError:
        return default

def fmt(v, digits=0):
    return f"{v:,.{digits}f}"

def ms(v):
    return "n/a" if v < 0 else (f"{v:,.0f} ms" if v >= 10 else f"{v:.2f} ms")

def ratio(a, b):
    return a / b if b > 0 else float("nan")

def verdict(value, goal):
    return "met" if value >= goal else "MISSED"

rows = []
def row(case, vapord, peer, ratio_text="", goal="", limit=""):
    rows.append((case, vapord, peer, ratio_text, goal, limit))

def busy_text(values):
    return "/".join(f"{float(v) * 100:.0f}" for v in values if v != "") + "%"

def cpus(server_key, wrk_key):
    busy_key = server_key.replace("_cpu", "_busy")
    return (f"srv {num(server_key) * 100:.0f}% wrk {num(wrk_key) * 100:.0f}%, cores "
            + busy_text(r.get(busy_key, "").split(",")))

for n in metrics_jobs.split():
    vm, gm = num(f"vapord_metrics_{n}_rps"), num(f"gateway_metrics_{n}_rps")
    x = ratio(vm, gm)
    row(f"/metrics req/s ({int(n):,} jobs stepping; {int(num(f'metrics_series_{n}')):,} series)",
        fmt(vm), f"{fmt(gm)} pushgateway", f"{x:.2f}x", f">= 2x {verdict(x, 2)}",
        "vapord " + cpus(f"vapord_metrics_{n}_cpu", f"vapord_metrics_{n}_wrk_cpu"))
    row("  /metrics p99 latency", ms(num(f"vapord_metrics_{n}_p99")),
        ms(num(f"gateway_metrics_{n}_p99")), "", "",
        "gateway " + cpus(f"gateway_metrics_{n}_cpu", f"gateway_metrics_{n}_wrk_cpu"))
    row("  /metrics response bytes", fmt(num(f"metrics_bytes_{n}")), fmt(num(f"gateway_bytes_{n}")))
    if n != jobs:
        continue
    jr, hr = num("jobs_rps"), num("healthz_rps")
    x = ratio(jr, hr)
    row(f"GET /api/v1/jobs req/s ({jobs} jobs, {num('jobs_bytes') / 1024:,.0f} KiB)", fmt(jr),
        f"{fmt(hr)} /healthz", f"{x:.3f}", f">= 0.5 {verdict(x, 0.5)}",
        "jobs " + cpus("jobs_cpu", "jobs_wrk_cpu"))
    row("  p99 latency", ms(num("jobs_p99")), ms(num("healthz_p99")), "", "",
        "healthz " + cpus("healthz_cpu", "healthz_wrk_cpu"))
    # Per request, a 331 KiB document cannot keep up with a 15-byte one; per byte it is compared
    # with a static file the same binary serves from memory.
    sr = num("static_rps")
    jb, sb = jr * num("jobs_bytes") / 1e6, sr * num("static_bytes") / 1e6
    x = ratio(jb, sb)
    row("  the same in MB/s, vs a static file (/assets/uplot.js)", f"{jb:,.0f} MB/s",
        f"{sb:,.0f} MB/s ({fmt(sr)} req/s of {num('static_bytes') / 1024:,.0f} KiB)", f"{x:.2f}",
        f">= 0.5 {verdict(x, 0.5)}", "static " + cpus("static_cpu", "static_wrk_cpu"))

for interval, n in cases:
    key = f"{interval}_{n}"
    v, p = load(f"vapord-ws-{key}.json"), load(f"peer-ws-{key}.json")
    vd, pd = v.get("deliveries_per_second", 0), p.get("deliveries_per_second", 0)
    x = ratio(vd, pd)
    def limit(m):
        return (f"srv {m.get('server_cpu_ratio', -1) * 100:.0f}% cli "
                f"{m.get('client_cpu_ratio', -1) * 100:.0f}%, cores "
                f"{busy_text(m.get('cpu_busy', []))}, unread "
                f"{m.get('client_unread_mean_bytes', 0) / 1024:,.0f}K")
    due = int(jobs) * 1000 / float(interval.rstrip("ms"))
    row(f"WS {n} subs, {jobs} jobs/{interval} ({due:,.0f} pts/s): deliveries/s", fmt(vd),
        f"{fmt(pd)} python", f"{x:.2f}x", f">= 10x {verdict(x, 10)}", "vapord " + limit(v))
    row("  p99 step-to-client latency", ms(v.get("latency_p99_ms", -1)),
        ms(p.get("latency_p99_ms", -1)), "", "", "python " + limit(p))
    def kept(m):
        return f"{m.get('connected_at_start', 0)} -> {m.get('connected_at_end', 0)} of {n}"
    row("  subscribers connected, window start -> end", kept(v), kept(p))
    def before_cut(m):
        if not m:
            return "no result"
        if m.get("lost") and m.get("before_cut_seconds", 0) <= 0:
            return f"lost while connecting ({m.get('first_close_seconds', 0):.1f} s)"
        rate = (f"{fmt(m['before_cut_deliveries_per_second'])}/s, p99 "
                f"{ms(m['before_cut_latency_p99_ms'])}")
        if not m.get("lost"):
            return rate + ", none lost"
        return rate + f", for {m['before_cut_seconds']:.1f} s"
    row("  from all connected to first loss", before_cut(v), before_cut(p))
    row("  points/s produced", fmt(num(f"vapord_ws_{key}_points_per_second")) + " (scheduler)",
        f"{due:,.0f} due")

widths = [max(len(str(c[i])) for c in rows + [("case", "vapord", "peer", "ratio", "goal", "limit")])
          for i in range(6)]
def line(cells):
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
print()
print(f"Vapor network benchmark: {os.cpu_count()} CPUs, {pinning}; {seconds} s per load run; "
      f"WS points ~{num('point_bytes'):.0f} B, hello {num('hello_bytes') / 1024:,.0f} KiB")
print(f"{r.get('vapord_version', 'vapord ?')}; ", end="")
print(f"load average before {r.get('load_before', '?')}, after {r.get('load_after', '?')} "
      f"(anything above ~2 means other work shared these CPUs)")
print("limit: CPU used over the window by the server (srv) and the load generator (wrk, cli); how "
      "busy each core was (all processes: more than srv/cli means other work shared it); bytes "
      "left unread in the client's sockets (mean of 100 ms samples)")
print(line(("case", "vapord", "peer", "ratio", "goal", "limit")))
print(line(tuple("-" * w for w in widths)))
for cells in rows:
    print(line(cells))
print()
notes = []
error_keys = ["jobs_errors", "healthz_errors", "static_errors"] + [f"{who}_metrics_{n}_errors" for n in metrics_jobs.split() for who in ("vapord", "gateway")]
errors = {k: int(num(k)) for k in error_keys if num(k) > 0}
if errors:
    notes.append(f"wrk errors (non-2xx or socket): {errors}")
runs = [(f"http_{n}", f"HTTP run, {n} jobs") for n in metrics_jobs.split()]
for key, label in runs + [(f"ws_{i}_{n}", f"WS {n} subs {i}") for i, n in cases]:
    http = key.startswith("http_")
    prefix = key if http else f"vapord_{key}"
    note = (f"vapord {label}: exit {r.get(prefix + '_exit', '?')}, peak RSS {r.get(prefix + '_rss', '?')} MiB"
            + ("" if http else f" (python peer {r.get(f'peer_{key}_rss', '?')} MiB)")
            + f", store commit mean {r.get(prefix + '_commit_mean_ms', '?')} ms")
    if not http:
        note += f", disconnects {r.get(f'vapord_{key}_disconnects', '').strip() or 'none'}"
    if r.get(prefix + "_complaints"):
        note += f"; log: {r[prefix + '_complaints'].split('|')[0]}"
    notes.append(note)
for interval, n in cases:
    for who in ("vapord", "peer"):
        m = load(f"{who}-ws-{interval}_{n}.json")
        if m.get("close_reasons"):
            notes.append(f"{who} WS {n} subs {interval}: clients lost {m['close_reasons']} (first "
                         f"{m.get('first_close_seconds', 0):+.1f} s from all connected)")
for note in notes:
    print("note: " + note)
EOF
