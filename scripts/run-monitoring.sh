#!/usr/bin/env bash
# Runs Prometheus and Alertmanager from Debian's packages (prometheus, prometheus-alertmanager) on
# 127.0.0.1 with Vapor's shipped configuration (config/prometheus, config/alertmanager), against a
# vapord on 127.0.0.1:9786: the alert rules, their state and the notifications without Grafana.
# Ctrl-C stops everything it started.
#
#   scripts/run-monitoring.sh
#
# Settings (environment):
#   VAPORD_ADDRESS      vapord to scrape                       (127.0.0.1:9786)
#   PROMETHEUS_PORT     Prometheus's port on 127.0.0.1         (9090)
#   ALERTMANAGER_PORT   Alertmanager's port on 127.0.0.1       (9093)
#   WEBHOOK_URL         where Alertmanager sends notifications (http://127.0.0.1:5001/). When it
#                       names a free port on 127.0.0.1, this script listens there itself and
#                       prints one line per notified alert.
#   MONITORING_DIR      generated configs, data and logs       (var/monitoring; delete to reset)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

vapord_address=${VAPORD_ADDRESS:-127.0.0.1:9786}
prometheus_port=${PROMETHEUS_PORT:-9090}
alertmanager_port=${ALERTMANAGER_PORT:-9093}
webhook_url=${WEBHOOK_URL:-http://127.0.0.1:5001/}
dir=${MONITORING_DIR:-$repo/var/monitoring}

find_binary() {  # first of the names on PATH, or a hint and exit
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null; then command -v "$name"; return; fi
  done
  echo "run-monitoring: $1 not found; install Debian's prometheus and prometheus-alertmanager" \
       "(sudo apt-get install prometheus prometheus-alertmanager)" >&2
  exit 1
}
prometheus=$(find_binary prometheus)
promtool=$(find_binary promtool)
alertmanager=$(find_binary prometheus-alertmanager alertmanager)
amtool=$(find_binary amtool)

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for entry in "Prometheus:$prometheus_port:PROMETHEUS_PORT" \
             "Alertmanager:$alertmanager_port:ALERTMANAGER_PORT"; do
  IFS=: read -r what port variable <<<"$entry"
  if port_in_use "$port"; then
    echo "run-monitoring: 127.0.0.1:$port ($what) is taken; Debian's packages start system" \
         "services on the default ports (systemctl stop prometheus prometheus-alertmanager)," \
         "or set $variable" >&2
    exit 1
  fi
done

mkdir -p "$dir"
# The shipped files with the addresses substituted; the rule file is used where it is.
sed -e "s|127\.0\.0\.1:9786|$vapord_address|" \
    -e "s|127\.0\.0\.1:9093|127.0.0.1:$alertmanager_port|" \
    -e "s|^\(\s*- \)vapor-alerts\.yml$|\1$repo/config/prometheus/vapor-alerts.yml|" \
    "$repo/config/prometheus/prometheus.yml" >"$dir/prometheus.yml"
sed -e "s|http://127\.0\.0\.1:5001/|$webhook_url|" \
    "$repo/config/alertmanager/alertmanager.yml" >"$dir/alertmanager.yml"
"$promtool" check config "$dir/prometheus.yml" >/dev/null
"$amtool" check-config "$dir/alertmanager.yml" >/dev/null

pids=()
stop() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'echo; echo "run-monitoring: stopping"; stop; exit 0' INT TERM

# A notification printer on the webhook's port, unless something (your receiver) listens there.
printer=""
if [[ $webhook_url =~ ^http://127\.0\.0\.1:([0-9]+)/?$ ]] &&
   ! port_in_use "${BASH_REMATCH[1]}"; then
  python3 -u - "${BASH_REMATCH[1]}" <<'EOF' &
import datetime, http.server, json, sys

class Printer(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        notification = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        now = datetime.datetime.now().strftime("%H:%M:%S")
        for alert in notification.get("alerts", []):
            labels = alert["labels"]
            subject = labels.get("job_name") or labels.get("instance", "")
            print(f"{now} [{alert['status']}] {labels.get('alertname')} {subject} "
                  f"-> {notification.get('receiver')}: {alert['annotations'].get('summary', '')}")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Printer).serve_forever()
EOF
  pids+=($!)
  printer="printed below as they arrive"
fi

"$alertmanager" --config.file="$dir/alertmanager.yml" --storage.path="$dir/alertmanager-data" \
  --web.listen-address="127.0.0.1:$alertmanager_port" \
  --web.external-url="http://127.0.0.1:$alertmanager_port/" \
  --cluster.listen-address= >"$dir/alertmanager.log" 2>&1 &
pids+=($!)
# --web.enable-lifecycle: `curl -X POST http://127.0.0.1:9090/-/reload` re-reads edited rules.
"$prometheus" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus-data" \
  --web.listen-address="127.0.0.1:$prometheus_port" \
  --web.external-url="http://127.0.0.1:$prometheus_port/" \
  --web.enable-lifecycle >"$dir/prometheus.log" 2>&1 &
pids+=($!)

for port in "$alertmanager_port" "$prometheus_port"; do
  for _ in $(seq 300); do
    port_in_use "$port" && break
    for pid in "${pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "run-monitoring: a daemon exited at start; see $dir/*.log" >&2
        tail -n 5 "$dir/alertmanager.log" "$dir/prometheus.log" >&2
        exit 1
      fi
    done
    sleep 0.1
  done
done

if ! (exec 3<>"/dev/tcp/${vapord_address%:*}/${vapord_address##*:}") 2>/dev/null; then
  echo "run-monitoring: nothing answers at $vapord_address yet; VaporDown fires after a minute" \
       "unless vapord starts (scripts/demo.sh)" >&2
fi
cat <<EOF
Prometheus:    http://127.0.0.1:$prometheus_port  (/alerts, /rules, /targets)
Alertmanager:  http://127.0.0.1:$alertmanager_port
Scraping:      vapord at $vapord_address every 5s, rules from config/prometheus/vapor-alerts.yml
Notifications: $webhook_url${printer:+ ($printer)}
Files, logs:   $dir
Ctrl-C stops both.
EOF

# Until Ctrl-C, or until one of them exits by itself.
set +e
wait -n "${pids[@]}"
echo "run-monitoring: a daemon exited; see $dir/*.log" >&2
exit 1
