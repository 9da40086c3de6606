"""Vapor's alerting end to end, with the real daemons: vapord runs a queue in which one job
crashes, one completes, one is stopped by a user, one keeps running healthily and one keeps running
with a NaN loss; Prometheus scrapes it every second with the shipped rules; Alertmanager, with the
shipped routes and inhibitions, notifies a webhook sink served by this test.

The Prometheus and Alertmanager configurations are the shipped files with ports, the sink's URL
and the intervals substituted (each substitution must match, so a reshaped config file fails here
rather than being silently untested); the rule file is loaded as shipped.

usage: alerting_e2e_test.py VAPORD PROMETHEUS ALERTMANAGER
"""

import http.server
import json
import os
import re
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from vapor_testing import ServiceProcess, Vapord, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VAPORD, PROMETHEUS, ALERTMANAGER = sys.argv[1:4]
del sys.argv[1:4]

PROMETHEUS_YML = os.path.join(REPO, "config", "prometheus", "prometheus.yml")
RULES_YML = os.path.join(REPO, "config", "prometheus", "vapor-alerts.yml")
ALERTMANAGER_YML = os.path.join(REPO, "config", "alertmanager", "alertmanager.yml")

# Started through the API once Prometheus scrapes vapord, so that every transition is scraped.
QUEUE = """jobs:
  - name: fails-fast
    epochs: 1
    steps_per_epoch: 100
    step_interval: 50ms
    start: manual
    faults: {fail_at_step: 10}
  - name: completes
    epochs: 1
    steps_per_epoch: 20
    step_interval: 50ms
    start: manual
  - name: stopped-by-user
    epochs: 10
    steps_per_epoch: 100
    step_interval: 100ms
    start: manual
  - name: keeps-running
    epochs: 10
    steps_per_epoch: 300
    step_interval: 100ms
    start: manual
  - name: nan-then-hang
    epochs: 1
    steps_per_epoch: 100
    step_interval: 50ms
    start: manual
    on_nonfinite: record
    faults: {nan_at_step: 5, stall_at_step: 6}
"""
# A finished job's series leave /metrics after 20s (its VaporJobFailed resolves 15s later, after
# the rule's keep_firing_for); the hung job is not failed by vapord during the test.
VAPORD_CONFIG = """scheduler:
  max_concurrent: 8
  stall_timeout: 5m
metrics:
  finished_job_ttl: 20s
"""
TTL_SECONDS = 20
KEEP_FIRING_SECONDS = 15
QUIET_JOBS = {"completes", "stopped-by-user", "keeps-running"}


def substitute(text, pattern, replacement, count):
    """re.subn that insists on `count` matches."""
    result, found = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert found == count, \
        f"expected {count} match(es) of {pattern!r} in a shipped config, got {found}"
    return result


def http_json(url, body=None, headers=None, method=None, timeout=10):
    """GET `url` (POST when there is a JSON `body` or `method` says so); its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method=method or ("GET" if body is None else "POST"))
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
        return json.loads(text) if text.strip() else None


class WebhookSink:
    """Alertmanager's webhook receiver: records every notification it is sent."""

    def __init__(self):
        self.notifications = []
        self.lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    sink.notifications.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self):
        with self.lock:
            return list(self.notifications)

    def alerts(self, **labels):
        """(notification, alert) for every alert sent whose labels include `labels`."""
        return [(n, a) for n in self.received() for a in n["alerts"]
                if all(a["labels"].get(k) == v for k, v in labels.items())]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class AlertingEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        cls.folder = tempfile.TemporaryDirectory(prefix="vapor-alerting-e2e-")
        cls.sink = WebhookSink()
        cls.vapord = Vapord(VAPORD, QUEUE, VAPORD_CONFIG).__enter__()
        cls.alertmanager = cls.prometheus = None
        try:
            cls.start_alertmanager()
            cls.start_prometheus()
            wait_for("Prometheus to scrape vapord", cls.vapord_scraped, 30, cls.diagnostics)
            for name in ["fails-fast", "completes", "stopped-by-user", "keeps-running",
                         "nan-then-hang"]:
                cls.control(name, "start")
            cls.jobs_started = time.monotonic()
            wait_for("stopped-by-user to step and completes to complete",
                     lambda: cls.job("stopped-by-user")["step"] > 5
                     and cls.job("completes")["state"] == "complete", 30, cls.diagnostics)
            cls.control("stopped-by-user", "stop")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for daemon in (cls.prometheus, cls.alertmanager):
            if daemon is not None:
                daemon.stop()
        cls.vapord.__exit__(None, None, None)
        cls.sink.close()
        cls.folder.cleanup()
        print(f"\nalerting e2e: {time.monotonic() - cls.started:.1f}s in all", file=sys.stderr)

    @classmethod
    def start_alertmanager(cls):
        with open(ALERTMANAGER_YML) as f:
            config = f.read()
        config = substitute(config, r"http://127\.0\.0\.1:5001/", cls.sink.url, 2)
        config = substitute(config, r"^(\s*group_wait:) \S+", r"\1 1s", 1)
        config = substitute(config, r"^(\s*group_interval:) \S+", r"\1 1s", 1)
        path = os.path.join(cls.folder.name, "alertmanager.yml")
        with open(path, "w") as f:
            f.write(config)
        storage = os.path.join(cls.folder.name, "alertmanager-data")
        cls.alertmanager = ServiceProcess(
            "alertmanager", cls.folder.name,
            lambda port: [ALERTMANAGER, f"--config.file={path}", f"--storage.path={storage}",
                          f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            "/-/ready")

    @classmethod
    def start_prometheus(cls):
        with open(PROMETHEUS_YML) as f:
            config = f.read()
        config = substitute(config, r"^(\s*scrape_interval:) \S+", r"\1 1s", 2)
        config = substitute(config, r"^(\s*evaluation_interval:) \S+", r"\1 1s", 1)
        config = substitute(config, r"127\.0\.0\.1:9786", f"127.0.0.1:{cls.vapord.port}", 1)
        config = substitute(config, r"127\.0\.0\.1:9093", f"127.0.0.1:{cls.alertmanager.port}", 1)
        config = substitute(config, r"^(\s*- )vapor-alerts\.yml$", r"\g<1>" + RULES_YML, 1)
        path = os.path.join(cls.folder.name, "prometheus.yml")
        with open(path, "w") as f:
            f.write(config)
        storage = os.path.join(cls.folder.name, "prometheus-data")
        cls.prometheus = ServiceProcess(
            "prometheus", cls.folder.name,
            lambda port: [PROMETHEUS, f"--config.file={path}", f"--storage.tsdb.path={storage}",
                          f"--web.listen-address=127.0.0.1:{port}"],
            "/-/ready")

    @classmethod
    def diagnostics(cls):
        parts = [f"--- sink received:\n{json.dumps(cls.sink.received(), indent=1)[-6000:]}",
                 f"--- vapord log:\n{cls.vapord.log()[-3000:]}"]
        for daemon in (cls.prometheus, cls.alertmanager):
            if daemon is not None:
                parts.append(f"--- {daemon.name} log:\n{daemon.log()[-3000:]}")
        return "\n".join(parts)

    @classmethod
    def query(cls, promql):
        url = cls.prometheus.url("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        answer = http_json(url)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    @classmethod
    def vapord_scraped(cls):
        return any(r["value"][1] == "1" for r in cls.query('up{job="vapor"}'))

    @classmethod
    def job(cls, name):
        return http_json(cls.vapord.url(f"/api/v1/jobs/{name}"))

    @classmethod
    def control(cls, name, action):
        http_json(cls.vapord.url(f"/api/v1/jobs/{name}/{action}"), method="POST",
                  headers={"Authorization": f"Bearer {cls.vapord.token()}"})

    def firing(self, alertname, job_name, timeout):
        """The first firing notification of `alertname` for `job_name`, waiting up to `timeout`."""
        return wait_for(f"a firing {alertname} for {job_name}",
                        lambda: [(n, a) for n, a in self.sink.alerts(alertname=alertname,
                                                                      job_name=job_name)
                                 if a["status"] == "firing"],
                        timeout, self.diagnostics)[0]

    def test_1_a_failed_job_notifies_once_naming_the_job_and_its_reason(self):
        notification, alert = self.firing("VaporJobFailed", "fails-fast", 60)
        print(f"\nVaporJobFailed notified {time.monotonic() - self.jobs_started:.1f}s after the "
              "jobs started", file=sys.stderr)
        job = self.job("fails-fast")
        self.assertEqual((job["state"], job["reason"]), ("failed", "crashed"))

        self.assertEqual(notification["status"], "firing")
        self.assertEqual(notification["receiver"], "vapor-critical")
        self.assertEqual(notification["groupLabels"],
                         {"alertname": "VaporJobFailed", "job_name": "fails-fast"})
        self.assertEqual(alert["labels"], {
            "alertname": "VaporJobFailed", "severity": "critical", "job": "vapor",
            "instance": f"127.0.0.1:{self.vapord.port}", "job_id": str(job["id"]),
            "job_name": "fails-fast", "reason": "crashed"})
        annotations = alert["annotations"]
        self.assertEqual(annotations["summary"], "Training job fails-fast failed: crashed")
        self.assertIn("Job fails-fast (id", annotations["description"])
        self.assertIn("failed with reason crashed", annotations["description"])
        self.assertEqual(
            annotations["runbook_url"],
            "https://github.com/vapor-monitor/vapor/blob/main/RUNBOOK.md#vaporjobfailed")
        self.assertEqual(
            annotations["dashboard_url"],
            "http://localhost:3000/d/vapor-training/vapor-training?var-job_name=fails-fast")

    def test_2_a_running_job_with_a_nan_loss_notifies_a_warning(self):
        notification, alert = self.firing("VaporLossNotFinite", "nan-then-hang", 60)
        self.assertEqual(notification["receiver"], "vapor-webhook")
        self.assertEqual(alert["labels"]["severity"], "warning")
        self.assertEqual(alert["annotations"]["summary"],
                         "Training job nan-then-hang has a non-finite loss (NaN)")
        job = self.job("nan-then-hang")
        self.assertEqual((job["state"], job["step"]), ("running", 5))

    def test_3_inhibitions_and_grouping(self):
        # Alerts posted straight to Alertmanager, on instances that are not the real vapord.
        def alert(alertname, instance, job_name=None, severity="warning", **labels):
            labels.update(alertname=alertname, severity=severity, instance=instance, job="vapor")
            if job_name is not None:
                labels["job_name"] = job_name
            return {"labels": labels, "annotations": {"summary": alertname}}

        a, b, c, d = "192.0.2.1:9786", "192.0.2.2:9786", "192.0.2.3:9786", "192.0.2.4:9786"
        posted = [
            # A failed job silences its own stall, overdue and loss alerts ...
            alert("VaporJobFailed", a, "inhibit-failed", "critical", reason="stalled"),
            alert("VaporJobStalled", a, "inhibit-failed"),
            alert("VaporJobOverdue", a, "inhibit-failed"),
            alert("VaporLossNotFinite", a, "inhibit-failed"),
            # ... and not another job's.
            alert("VaporJobStalled", a, "inhibit-control"),
            # A vapord that cannot be scraped silences everything else from it.
            alert("VaporDown", b, severity="critical"),
            alert("VaporJobFailed", b, "behind-down", "critical", reason="crashed"),
            alert("VaporConfigReloadFailed", b),
            # One alert and job on two instances: one group, one notification.
            alert("VaporJobStalled", c, "grouped"),
            alert("VaporJobStalled", d, "grouped"),
        ]
        http_json(self.alertmanager.url("/api/v2/alerts"), body=posted)

        delivered = {("VaporJobFailed", "inhibit-failed"), ("VaporJobStalled", "inhibit-control"),
                     ("VaporDown", None), ("VaporJobStalled", "grouped")}
        suppressed = {("VaporJobStalled", "inhibit-failed"), ("VaporJobOverdue", "inhibit-failed"),
                      ("VaporLossNotFinite", "inhibit-failed"), ("VaporJobFailed", "behind-down"),
                      ("VaporConfigReloadFailed", None)}
        synthetic = {a, b, c, d}

        def sent():
            return {(al["labels"]["alertname"], al["labels"].get("job_name"))
                    for _, al in self.sink.alerts() if al["labels"].get("instance") in synthetic}

        wait_for("the uninhibited posted alerts to be notified", lambda: delivered <= sent(), 30,
                 self.diagnostics)
        # Alertmanager's own view: the targets are suppressed by an inhibiting alert.
        states = {}
        for entry in http_json(self.alertmanager.url("/api/v2/alerts")):
            labels = entry["labels"]
            if labels.get("instance") in synthetic:
                key = (labels["alertname"], labels.get("job_name"))
                states[key] = (entry["status"]["state"], bool(entry["status"]["inhibitedBy"]))
        for key in suppressed:
            self.assertEqual(states.get(key), ("suppressed", True), key)
        for key in delivered:
            self.assertEqual(states.get(key), ("active", False), key)
        # Give a wrongly uninhibited alert time to arrive (group_wait and group_interval are 1s).
        time.sleep(3)
        self.assertEqual(sent() & suppressed, set())

        grouped = [n for n in self.sink.received()
                   if n["groupLabels"] == {"alertname": "VaporJobStalled", "job_name": "grouped"}]
        self.assertEqual(len(grouped), 1, grouped)
        self.assertEqual(grouped[0]["receiver"], "vapor-webhook")
        self.assertEqual(sorted(al["labels"]["instance"] for al in grouped[0]["alerts"]), [c, d])

    def test_4_the_failure_resolves_when_its_series_expire(self):
        self.firing("VaporJobFailed", "fails-fast", 60)
        finished = time.monotonic()
        wait_for("a resolved VaporJobFailed for fails-fast",
                 lambda: [a for _, a in self.sink.alerts(alertname="VaporJobFailed",
                                                        job_name="fails-fast")
                          if a["status"] == "resolved"],
                 TTL_SECONDS + KEEP_FIRING_SECONDS + 45, self.diagnostics)
        self.assertEqual(self.query('vapor_job_state{job_name="fails-fast"}'), [])
        print(f"\nVaporJobFailed resolved {time.monotonic() - finished:.1f}s after it was "
              "notified", file=sys.stderr)
        # Notified once (then resolved once): no repeat while it fired.
        firing = [a for _, a in self.sink.alerts(alertname="VaporJobFailed",
                                                 job_name="fails-fast")
                  if a["status"] == "firing"]
        self.assertEqual(len(firing), 1, firing)

    def test_5_completed_stopped_and_healthy_jobs_alert_nothing(self):
        self.assertEqual(self.job("completes")["state"], "complete")
        self.assertEqual(self.job("stopped-by-user")["state"], "stopped")
        self.assertEqual(self.job("keeps-running")["state"], "running")
        # Not even pending, at any evaluation since Prometheus started.
        quiet = "|".join(sorted(QUIET_JOBS))
        self.assertEqual(self.query(f'count_over_time(ALERTS{{job_name=~"{quiet}"}}[10m])'), [])
        self.assertEqual([a for _, a in self.sink.alerts()
                          if a["labels"].get("job_name") in QUIET_JOBS], [])
        # Whatever fired came from the faulty jobs (the hung job may also have had time to stall).
        fired = {(r["metric"]["alertname"], r["metric"].get("job_name"))
                 for r in self.query('count_over_time(ALERTS{alertstate="firing"}[10m])')}
        allowed = {("VaporJobFailed", "fails-fast"), ("VaporLossNotFinite", "nan-then-hang"),
                   ("VaporJobStalled", "nan-then-hang")}
        self.assertLessEqual(fired, allowed)
        self.assertIn(("VaporJobFailed", "fails-fast"), fired)


if __name__ == "__main__":
    unittest.main(verbosity=2)
