"""The JSON API of the real vapord over real HTTP: the token vapord creates, submitting,
starting and stopping jobs, and the refusals (401, 404, 409, 421)."""

import contextlib
import json
import os
import sqlite3
import stat
import sys
import time
import unittest
import urllib.error
import urllib.request

from vapor_testing import Vapord

VAPORD = sys.argv.pop(1)

QUEUE = """jobs:
  - name: manual
    epochs: 1
    steps_per_epoch: 2000
    step_interval: 10ms
    start: manual
"""


def request(daemon, method, path, body=None, token=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(daemon.url(path), data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


class StoreTest(unittest.TestCase):
    def test_rows_are_committed_once_flush_rows_wait_without_waiting_for_the_interval(self):
        queue = ("jobs:\n  - name: fast\n    epochs: 1\n    steps_per_epoch: 3000\n"
                 "    step_interval: 1ms\n")
        with Vapord(VAPORD, queue, store_config="flush_interval: 1h, flush_rows: 500") as daemon:
            database = "file:" + os.path.join(daemon.path, "vapor.db") + "?mode=ro"
            stored = 0
            deadline = time.monotonic() + 20
            while stored < 2000 and time.monotonic() < deadline:
                time.sleep(0.2)
                with contextlib.closing(sqlite3.connect(database, uri=True, timeout=5)) as db:
                    stored = db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
            self.assertGreaterEqual(stored, 2000, "rows reach the file long before the 1 h interval")
            _, metrics = daemon.get("/metrics")
            commits = next(float(line.split()[1]) for line in metrics.splitlines()
                           if line.startswith("vapor_store_commit_duration_seconds_count"))
            self.assertGreaterEqual(commits, 4, "several commits of about flush_rows each")


class ApiTest(unittest.TestCase):
    def test_token_file_is_created_private_and_guards_mutations(self):
        with Vapord(VAPORD, QUEUE) as daemon:
            token_path = os.path.join(daemon.path, "api-token")
            self.assertEqual(stat.S_IMODE(os.stat(token_path).st_mode), 0o600)
            self.assertIn(token_path, daemon.log(), "the log says where the token is")
            status, headers, body = request(daemon, "POST", "/api/v1/jobs/1/start")
            self.assertEqual(status, 401)
            self.assertTrue(headers["WWW-Authenticate"].startswith("Bearer"))
            self.assertEqual(body["error"]["code"], "unauthorized")
            status, _, _ = request(daemon, "POST", "/api/v1/jobs/1/start", token="wrong" * 8)
            self.assertEqual(status, 401)

    def test_submit_start_stop_and_conflicts(self):
        with Vapord(VAPORD, QUEUE) as daemon:
            token = daemon.token()
            status, _, listing = request(daemon, "GET", "/api/v1/jobs")
            self.assertEqual(status, 200)
            self.assertEqual([j["state"] for j in listing["jobs"]], ["queued"])

            status, _, started = request(daemon, "POST", "/api/v1/jobs/manual/start", token=token)
            self.assertEqual(status, 200)
            self.assertEqual(started["state"], "running")
            status, _, _ = request(daemon, "POST", "/api/v1/jobs/manual/start", token=token)
            self.assertEqual(status, 409, "a running job cannot be started again")

            time.sleep(0.3)
            status, _, stopped = request(daemon, "POST", "/api/v1/jobs/manual/stop", token=token)
            self.assertEqual(status, 200)
            self.assertEqual(stopped["state"], "stopped")
            status, _, _ = request(daemon, "POST", "/api/v1/jobs/manual/stop", token=token)
            self.assertEqual(status, 409)

            spec = {"name": "submitted", "epochs": 1, "steps_per_epoch": 20,
                    "step_interval": "10ms"}
            status, headers, created = request(daemon, "POST", "/api/v1/jobs", spec, token=token)
            self.assertEqual(status, 201)
            self.assertEqual(headers["Location"], f"/api/v1/jobs/{created['id']}")
            status, _, _ = request(daemon, "POST", "/api/v1/jobs", spec, token=token)
            self.assertEqual(status, 409, "names are unique")
            status, _, invalid = request(daemon, "POST", "/api/v1/jobs",
                                         {"name": "bad", "epochs": "ten"}, token=token)
            self.assertEqual(status, 400)
            self.assertIn("epochs", json.dumps(invalid))

            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                _, _, job = request(daemon, "GET", headers["Location"])
                if job["state"] == "complete":
                    break
                time.sleep(0.05)
            self.assertEqual(job["state"], "complete")
            self.assertEqual(job["step"], 20)
            _, _, points = request(daemon, "GET", headers["Location"] + "/metrics?limit=500")
            self.assertEqual([p["step"] for p in points["points"]], list(range(1, 21)))
            _, _, events = request(daemon, "GET", headers["Location"] + "/events")
            self.assertEqual([(e["from"], e["to"]) for e in events["events"]],
                             [("queued", "running"), ("running", "complete")])

            status, _, _ = request(daemon, "GET", "/api/v1/jobs/nope")
            self.assertEqual(status, 404)
            status, _, _ = request(daemon, "GET", "/api/v1/jobs",
                                   headers={"Host": "evil.example.com"})
            self.assertEqual(status, 421)

    def test_submitted_jobs_survive_a_restart(self):
        daemon = Vapord(VAPORD, QUEUE)
        with daemon:
            spec = {"name": "persisted", "epochs": 1, "steps_per_epoch": 5}
            status, _, _ = request(daemon, "POST", "/api/v1/jobs", spec, token=daemon.token())
            self.assertEqual(status, 201)
            time.sleep(0.3)  # past a flush
            daemon.process.send_signal(15)
            self.assertEqual(daemon.process.wait(timeout=5), 0)
            daemon.__enter__()
            _, _, listing = request(daemon, "GET", "/api/v1/jobs")
            self.assertIn("persisted", [j["name"] for j in listing["jobs"]])

    def test_a_manual_start_waiting_for_a_slot_survives_a_restart(self):
        queue = QUEUE + ("  - name: busy\n    epochs: 1\n    steps_per_epoch: 100000\n"
                         "    step_interval: 10ms\n")
        daemon = Vapord(VAPORD, queue, "scheduler: {max_concurrent: 1}\n")
        with daemon:
            status, _, job = request(daemon, "POST", "/api/v1/jobs/manual/start",
                                     token=daemon.token())
            self.assertEqual((status, job["state"]), (200, "queued"), "busy holds the slot")
            daemon.process.send_signal(15)
            self.assertEqual(daemon.process.wait(timeout=5), 0)
            daemon.__enter__()  # the same folder and database
            status, _, job = request(daemon, "POST", "/api/v1/jobs/busy/stop",
                                     token=daemon.token())
            self.assertEqual(status, 200)
            _, _, job = request(daemon, "GET", "/api/v1/jobs/manual")
            self.assertEqual(job["state"], "running",
                             "the start asked for before the restart took the freed slot")


if __name__ == "__main__":
    unittest.main(verbosity=2)
