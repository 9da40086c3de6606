"""scripts/run-monitoring.sh against the real vapord: it starts Debian's Prometheus and
Alertmanager with the shipped configuration, Prometheus loads every Vapor rule and scrapes vapord,
an alert reaches the script's notification printer through Alertmanager, and SIGINT (Ctrl-C)
stops everything it started.

usage: run_monitoring_test.py VAPORD
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

from vapor_testing import Vapord, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VAPORD = sys.argv.pop(1)
SCRIPT = os.path.join(REPO, "scripts", "run-monitoring.sh")
RULES = {"VaporJobFailed", "VaporJobStalled", "VaporLossNotFinite", "VaporJobOverdue",
         "VaporDown", "VaporConfigReloadFailed", "VaporStoreFailing"}

QUEUE = """jobs:
  - name: steady
    epochs: 10
    steps_per_epoch: 1000
    step_interval: 200ms
"""


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class RunMonitoringTest(unittest.TestCase):
    def test_serves_the_rules_delivers_a_notification_and_stops_on_sigint(self):
        started = time.monotonic()
        prometheus_port, alertmanager_port, webhook_port = free_port(), free_port(), free_port()
        with Vapord(VAPORD, QUEUE) as vapord, \
                tempfile.TemporaryDirectory(prefix="vapor-run-monitoring-") as folder:
            environment = dict(os.environ, VAPORD_ADDRESS=f"127.0.0.1:{vapord.port}",
                               PROMETHEUS_PORT=str(prometheus_port),
                               ALERTMANAGER_PORT=str(alertmanager_port),
                               WEBHOOK_URL=f"http://127.0.0.1:{webhook_port}/",
                               MONITORING_DIR=folder)
            script = subprocess.Popen(["bash", SCRIPT], env=environment, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output = []
            reader = threading.Thread(
                target=lambda: output.extend(iter(script.stdout.readline, "")), daemon=True)
            reader.start()

            def script_output():
                return "script output:\n" + "".join(output)

            try:
                wait_for("the script to print its URLs",
                         lambda: any("Ctrl-C stops both" in line for line in output), 60,
                         script_output)
                text = "".join(output)
                self.assertIn(f"Prometheus:    http://127.0.0.1:{prometheus_port}", text)
                self.assertIn(f"Alertmanager:  http://127.0.0.1:{alertmanager_port}", text)
                prometheus = f"http://127.0.0.1:{prometheus_port}"
                alertmanager = f"http://127.0.0.1:{alertmanager_port}"

                # Every shipped rule is loaded, and vapord is scraped.
                groups = get_json(prometheus + "/api/v1/rules")["data"]["groups"]
                self.assertEqual({rule["name"] for group in groups for rule in group["rules"]},
                                 RULES)
                wait_for("Prometheus to scrape vapord", lambda: [
                    t for t in get_json(prometheus + "/api/v1/targets")["data"]["activeTargets"]
                    if t["labels"]["job"] == "vapor" and t["health"] == "up"
                    and t["scrapeUrl"] == f"http://127.0.0.1:{vapord.port}/metrics"], 30,
                    script_output)
                config = get_json(prometheus + "/api/v1/status/config")["data"]["yaml"]
                self.assertIn("scrape_interval: 5s\n  scrape_timeout: 5s", config)

                # An alert posted to Alertmanager reaches the printer through the shipped route
                # (group_wait 10s).
                alert = [{"labels": {"alertname": "VaporJobFailed", "severity": "critical",
                                     "job_name": "smoke-test", "reason": "crashed"},
                          "annotations": {"summary": "Training job smoke-test failed: crashed"}}]
                request = urllib.request.Request(alertmanager + "/api/v2/alerts",
                                                 data=json.dumps(alert).encode(), method="POST",
                                                 headers={"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=10).close()
                wait_for("the printed notification", lambda: any(
                    "[firing] VaporJobFailed smoke-test -> vapor-critical: "
                    "Training job smoke-test failed: crashed" in line for line in output),
                    40, script_output)
            finally:
                script.send_signal(signal.SIGINT)
                try:
                    code = script.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    script.kill()
                    raise
                reader.join(timeout=5)
                script.stdout.close()
            self.assertEqual(code, 0, "".join(output))
            # Prometheus, Alertmanager and the printer are gone with it.
            wait_for("the ports to close", lambda: not any(
                listening(port) for port in (prometheus_port, alertmanager_port, webhook_port)),
                10, script_output)
        print(f"\nrun-monitoring smoke test: {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
