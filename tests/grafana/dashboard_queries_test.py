"""Every query of the Grafana dashboard, run against a real Prometheus scraping the real vapord:
each must return data, the job variable must list the jobs, the state code must name each job's
real state, and the alert list's filter must let the firing alert through.

Usage: dashboard_queries_test.py VAPORD PROMETHEUS"""

import datetime
import json
import math
import os
import re
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import dashboard_model as model
from vapor_testing import ServiceProcess, Vapord, wait_for

VAPORD = sys.argv.pop(1)
PROMETHEUS = sys.argv.pop(1)

# Manual starts, so that Prometheus scrapes every job before it changes state. `completes` runs
# for ~6 s, `crashes` fails after ~4 s, `runs` and `stopped` would run for minutes, `trains` is
# a real trainer process reporting named scalars (val_loss at every step, lr at every fifth) until
# vapord stops it, `blinks` starts just after a scrape and completes in a few tens of
# milliseconds, before the next one (Prometheus never sees it running), and `waits` is never
# started.
TRAINER = os.path.join(model.REPO, "tests", "e2e", "trainers", "toy_trainer.py")
QUEUE = """jobs:
  - name: completes
    epochs: 2
    steps_per_epoch: 30
    step_interval: 100ms
    start: manual
  - name: crashes
    epochs: 2
    steps_per_epoch: 50
    step_interval: 100ms
    start: manual
    faults: {fail_at_step: 40}
  - name: runs
    epochs: 5
    steps_per_epoch: 200
    step_interval: 200ms
    start: manual
  - name: stopped
    epochs: 5
    steps_per_epoch: 200
    step_interval: 200ms
    start: manual
  - name: trains
    kind: command
    command: [/usr/bin/python3, "{trainer}", "100000", --interval, "0.1", --end, hang]
    start: manual
  - name: blinks
    epochs: 1
    steps_per_epoch: 2
    step_interval: 10ms
    start: manual
  - name: waits
    epochs: 1
    start: manual
""".replace("{trainer}", TRAINER)
JOB_NAMES = ["blinks", "completes", "crashes", "runs", "stopped", "trains", "waits"]
STARTED_AT_ONCE = ["completes", "crashes", "runs", "stopped", "trains"]
STARTED = ["blinks"] + STARTED_AT_ONCE
# The job each annotation must mark, by the state it marks (running: started).
ANNOTATED = {"running": STARTED, "complete": ["blinks", "completes"], "failed": ["crashes"],
             "stopped": ["stopped"]}
SCALARS = ["lr", "val_loss"]

# Vapor's alert rules, so that the alert list's filter meets the alerts that really fire.
ALERT_RULES = os.path.join(model.REPO, "config", "prometheus", "vapor-alerts.yml")


class Prometheus:
    """A real Prometheus on a free port of 127.0.0.1, scraping one vapord every second."""

    def __init__(self, binary, vapord_port):
        self.dir = tempfile.TemporaryDirectory(prefix="vapor-grafana-prometheus-")
        config = os.path.join(self.dir.name, "prometheus.yml")
        with open(config, "w") as f:
            # The scrape job's name is the one config/prometheus/prometheus.yml gives it.
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    f"rule_files: [{ALERT_RULES}]\n"
                    "scrape_configs:\n"
                    "  - job_name: vapor\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{vapord_port}']}}]\n")
        storage = os.path.join(self.dir.name, "data")
        self.service = ServiceProcess(
            "prometheus", self.dir.name,
            lambda port: [binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
                          f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            "/-/ready")
        self.port = self.service.port

    def stop(self):
        self.service.stop()
        self.dir.cleanup()

    def api(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}?{query}",
                                    timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr, **params):
        return self.api("/api/v1/query", query=expr, **params)["result"]

    def ready(self):
        """Whether Prometheus has scraped vapord; raises if Prometheus exited, with its log."""
        if self.service.process.poll() is not None:
            raise RuntimeError(f"prometheus exited {self.service.process.returncode}:\n"
                               f"{self.service.log()}")
        try:
            return bool(self.query('up{job="vapor"} == 1'))
        except OSError:
            return False


def post(daemon, path):
    request = urllib.request.Request(daemon.url(path), method="POST",
                                     headers={"Authorization": f"Bearer {daemon.token()}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status
    except urllib.error.HTTPError as error:
        raise AssertionError(f"POST {path}: {error.code} {error.read().decode()}") from None


def job_states(daemon):
    return {job["name"]: job["state"] for job in json.loads(daemon.get("/api/v1/jobs")[1])["jobs"]}


def unix_ms(rfc3339):
    """vapord's API time (2024-05-01T12:00:00.123Z) as Unix milliseconds."""
    parsed = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ")
    return round(parsed.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def grafana_annotation_events(series_list, step_ms, use_value_for_time):
    """The events Grafana's Prometheus data source makes of an annotation query's range result,
    as PrometheusAnnotationSupport.processEvents does (packages/grafana-prometheus/src/
    annotations.ts): per series, each sample is a time (its value, floored, when
    useValueForTime; else the sample's time, kept if its value is positive), and times at most
    a step apart join one event from the first to the last. Returns (time, time_end, labels)."""
    events = []
    for series in series_list:
        if use_value_for_time:
            times = [math.floor(float(value)) for _, value in series["values"]]
        else:
            times = [math.floor(float(t) * 1000) for t, value in series["values"]
                     if float(value) > 0]
        event = None
        for time_ms in times:
            if event and event[1] + step_ms >= time_ms:
                event[1] = time_ms
                continue
            if event:
                events.append(tuple(event))
            event = [time_ms, time_ms, series["metric"]]
        if event:
            events.append(tuple(event))
    return events


def parse_matchers(text):
    """The alert list's label filter, {name op "value", ...}, as (name, op, value) triples."""
    return re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', text)


def matches(labels, matchers):
    for name, op, value in matchers:
        actual = labels.get(name, "")
        pattern = value.replace("\\\\", "\\")
        if op == "=" and actual != value or op == "!=" and actual == value:
            return False
        if op == "=~" and not re.fullmatch(pattern, actual):
            return False
        if op == "!~" and re.fullmatch(pattern, actual):
            return False
    return True


class DashboardQueriesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dashboard = model.load_dashboard()
        cls.daemon = Vapord(VAPORD, QUEUE).__enter__()
        cls.prometheus = None
        try:
            cls.prometheus = Prometheus(PROMETHEUS, cls.daemon.port)
            wait_for("Prometheus to scrape vapord", cls.prometheus.ready)
            cls.start = time.time()
            for name in STARTED_AT_ONCE:
                post(cls.daemon, f"/api/v1/jobs/{name}/start")
            time.sleep(2)
            post(cls.daemon, "/api/v1/jobs/stopped/stop")
            finished = {("completes", "complete"), ("crashes", "failed")}
            wait_for("completes to complete and crashes to fail",
                     lambda: finished <= set(job_states(cls.daemon).items()))
            # With slots free again (vapord runs 4 jobs at a time).
            cls.start_between_two_scrapes("blinks")
            # A few more scrapes, and a rule evaluation, after the last state change.
            time.sleep(3)
            cls.end = time.time()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_between_two_scrapes(cls, name):
        """Starts the job `name` just after Prometheus scrapes vapord, and waits for it to
        complete: it runs for a few tens of ms, the next scrape is 1 s away."""
        def last_scrape():
            return float(cls.prometheus.query('timestamp(up{job="vapor"})')[0]["value"][1])
        before = last_scrape()
        wait_for("a new scrape", lambda: last_scrape() != before, interval=0.005)
        post(cls.daemon, f"/api/v1/jobs/{name}/start")
        wait_for(f"{name} to complete", lambda: job_states(cls.daemon)[name] == "complete",
                 interval=0.01)

    @classmethod
    def tearDownClass(cls):
        if cls.prometheus is not None:
            cls.prometheus.stop()
        cls.daemon.__exit__(None, None, None)

    def variables(self):
        return {"job_name": JOB_NAMES, "scalar": SCALARS, **model.constants(self.dashboard)}

    def variable_values(self, name, variables):
        """What Grafana lists for a label_values() variable: the label's values in range."""
        variable = next(v for v in self.dashboard["templating"]["list"] if v["name"] == name)
        series, label = model.parse_label_values(model.variable_query(variable))
        params = {"start": self.start - 60, "end": self.end}
        if series:
            params["match[]"] = model.interpolate(series, variables)
        return sorted(self.prometheus.api(f"/api/v1/label/{label}/values", **params))

    def test_job_variable_lists_every_job(self):
        self.assertEqual(self.variable_values("job_name", {}), JOB_NAMES)

    def test_scalar_variable_lists_the_names_the_selected_jobs_report(self):
        self.assertEqual(self.variable_values("scalar", {"job_name": JOB_NAMES}), SCALARS)
        self.assertEqual(self.variable_values("scalar", {"job_name": ["runs"]}), [],
                         "a simulated job reports none")

    def test_named_scalars_panel_draws_each_name_of_the_real_job(self):
        panel = next(p for p in model.all_panels(self.dashboard) if p["title"] == "Named scalars")
        expr = model.interpolate(panel["targets"][0]["expr"], self.variables())
        result = self.prometheus.api("/api/v1/query_range", query=expr, start=self.start,
                                     end=self.end, step=1)["result"]
        self.assertEqual(sorted((s["metric"]["job_name"], s["metric"]["name"]) for s in result),
                         [("trains", "lr"), ("trains", "val_loss")])
        only_lr = model.interpolate(panel["targets"][0]["expr"],
                                    {"job_name": JOB_NAMES, "scalar": ["lr"]})
        self.assertEqual([s["metric"]["name"] for s in self.prometheus.query(only_lr,
                                                                             time=self.end)],
                         ["lr"])

    def test_every_query_returns_data(self):
        variables = self.variables()
        queries = list(model.queries(self.dashboard))
        self.assertGreater(len(queries), 10)
        for query in queries:
            with self.subTest(where=query.where):
                expr = model.interpolate(query.expr, variables)
                if query.instant:
                    result = self.prometheus.query(expr, time=self.end)
                else:
                    result = self.prometheus.api("/api/v1/query_range", query=expr,
                                                 start=self.start, end=self.end,
                                                 step=1)["result"]
                self.assertTrue(result, f"no data for:\n{expr}")

    def test_state_code_names_each_jobs_real_state(self):
        timeline = next(p for p in model.all_panels(self.dashboard)
                        if p["type"] == "state-timeline")
        mapping = timeline["fieldConfig"]["defaults"]["mappings"][0]["options"]
        expr = model.interpolate(timeline["targets"][0]["expr"], self.variables())
        shown = {}
        for series in self.prometheus.query(expr, time=self.end):
            code = str(int(float(series["value"][1])))
            shown[series["metric"]["job_name"]] = mapping.get(code, {}).get("text", code)
        self.assertEqual(shown, {"blinks": "complete", "completes": "complete",
                                 "crashes": "failed", "runs": "running",
                                 "stopped": "stopped", "trains": "running",
                                 "waits": "queued"})
        self.assertEqual(shown, job_states(self.daemon))

    def test_loss_curve_has_one_series_per_started_job(self):
        loss = next(p for p in model.all_panels(self.dashboard) if p["title"] == "Loss")
        expr = model.interpolate(loss["targets"][0]["expr"], self.variables())
        result = self.prometheus.api("/api/v1/query_range", query=expr, start=self.start,
                                     end=self.end, step=1)["result"]
        self.assertEqual(sorted(s["metric"]["job_name"] for s in result), sorted(STARTED))
        curve = [float(v) for _, v in next(s for s in result
                                           if s["metric"]["job_name"] == "completes")["values"]]
        self.assertGreater(len(set(curve)), 2, "a live curve, not one value")

    def annotation_events(self, annotation):
        """The events Grafana would draw for `annotation` over the test's time range."""
        expr = model.interpolate(annotation["expr"], self.variables())
        result = self.prometheus.api("/api/v1/query_range", query=expr, start=self.start - 10,
                                     end=self.end, step=1)["result"]
        return grafana_annotation_events(result, 1000, annotation["useValueForTime"])

    def test_short_job_was_never_scraped_running(self):
        # The premise of the next test: no scrape saw `blinks` running, so a state-based
        # annotation would have missed it.
        seen = self.prometheus.query(
            'max_over_time(vapor_job_state{job_name="blinks", state="running"}[5m])',
            time=self.end)
        self.assertEqual([float(s["value"][1]) for s in seen], [0.0])

    def test_annotations_mark_each_job_once_at_its_exact_time(self):
        for annotation in self.dashboard["annotations"]["list"]:
            expr = annotation["expr"]
            state = "running" if "vapor_job_start_timestamp_seconds" in expr else \
                re.search(r'vapor_job_state\{state="(\w+)"', expr).group(1)
            field = "started_at" if state == "running" else "finished_at"
            with self.subTest(annotation=annotation["name"]):
                events = self.annotation_events(annotation)
                self.assertEqual(sorted(labels["job_name"] for _, _, labels in events),
                                 sorted(ANNOTATED[state]), "one event per job")
                for time_ms, time_end_ms, labels in events:
                    job = json.loads(self.daemon.get(f"/api/v1/jobs/{labels['job_id']}")[1])
                    self.assertEqual(job["name"], labels["job_name"])
                    self.assertEqual(time_end_ms, time_ms, "a point, not a region")
                    self.assertLessEqual(abs(time_ms - unix_ms(job[field])), 1,
                                         f"{labels['job_name']} {field} {job[field]}")

    def test_failed_annotation_names_the_reason(self):
        annotation = next(a for a in self.dashboard["annotations"]["list"]
                          if 'state="failed"' in a["expr"])
        expr = model.interpolate(annotation["expr"], self.variables())
        result = self.prometheus.api("/api/v1/query_range", query=expr, start=self.start,
                                     end=self.end, step=1)["result"]
        self.assertEqual([(s["metric"]["job_name"], s["metric"]["reason"]) for s in result],
                         [("crashes", "crashed")])

    def test_alert_list_shows_the_firing_alert(self):
        # The alert list reads Prometheus's rules API; without a label filter it keeps every
        # firing instance of Vapor's rules, those that name no job included.
        alert_list = next(p for p in model.all_panels(self.dashboard) if p["type"] == "alertlist")
        matchers = parse_matchers(alert_list["options"]["alertInstanceLabelFilter"])
        self.assertEqual(matchers, [])

        def job_failed_alerts():
            groups = self.prometheus.api("/api/v1/rules", type="alert")["groups"]
            return [alert for group in groups for rule in group["rules"]
                    for alert in rule["alerts"]
                    if rule["name"] == "VaporJobFailed" and alert["state"] == "firing"]
        alerts = wait_for("VaporJobFailed to fire", job_failed_alerts, timeout=10)
        shown = [(a["labels"]["job_name"], a["labels"]["reason"])
                 for a in alerts if matches(a["labels"], matchers)]
        self.assertEqual(shown, [("crashes", "crashed")])

if __name__ == "__main__":
    unittest.main()
