"""Push jobs against the real vapord, with python3's standard library as the client (as a user's
training script would be): a trainer elsewhere posts batches of points (a JSON array or NDJSON)
with the job's own push token, named scalars reach /metrics and the feed, a bad batch records
nothing, steps only go forward, the token opens nothing else, finish ends the job, silence fails
it `stalled`, a store that falls behind answers 429, and a restart of vapord keeps the job running.

Usage: push_jobs_test.py VAPORD"""

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

import websockets

from vapor_testing import Vapord, eventually

VAPORD = sys.argv.pop(1)
VAPORCTL = sys.argv.pop(1)


def call(daemon, method, path, body=None, token=None, content_type="application/json"):
    """(status, parsed JSON body, headers) of one request."""
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(daemon.url(path), data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def points(first, last, **scalars):
    """Points first..last with a decaying loss and the given scalars (name -> f(step))."""
    return [{"step": s, "loss": 2.0 / s, "accuracy": min(1.0, s / 100),
             **{name: f(s) for name, f in scalars.items()}} for s in range(first, last + 1)]


def ndjson(batch):
    return ("\n".join(json.dumps(point) for point in batch) + "\n").encode()


def job(daemon, name):
    return call(daemon, "GET", f"/api/v1/jobs/{name}")[1]


def stored_steps(daemon, name):
    history = call(daemon, "GET", f"/api/v1/jobs/{name}/metrics?limit=10000")[1]
    return [point["step"] for point in history["points"]]


def metric_lines(daemon, prefix):
    return [line for line in daemon.get("/metrics")[1].splitlines() if line.startswith(prefix)]


class PushJobsTest(unittest.TestCase):
    def test_a_push_job_takes_batches_with_its_own_token_and_ends_when_told(self):
        with Vapord(VAPORD, "jobs: []\n") as daemon:
            api = daemon.token()
            status, created, headers = call(daemon, "POST", "/api/v1/jobs", {
                "name": "remote", "kind": "push", "epochs": 2, "steps_per_epoch": 50}, api)
            self.assertEqual(status, 201, created)
            push = created["push_token"]
            self.assertRegex(push, r"^[0-9a-f]{64}$")
            self.assertEqual(headers["Cache-Control"], "no-store")
            self.assertEqual((created["state"], created["kind"]), ("queued", "push"))
            self.assertNotIn("push_token", job(daemon, "remote"), "shown once, at creation")
            status, other, _ = call(daemon, "POST", "/api/v1/jobs",
                                    {"name": "other", "kind": "push"}, api)
            self.assertEqual(status, 201, other)

            # A JSON array, then NDJSON; the job runs from its first batch.
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     points(1, 10, val_loss=lambda s: 2.2 / s,
                                            lr=lambda s: 0.1), push)
            self.assertEqual((status, answer["accepted"], answer["job"]["state"]),
                             (200, 10, "running"), answer)
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     ndjson(points(11, 20, val_loss=lambda s: 2.2 / s)), push,
                                     "application/x-ndjson")
            self.assertEqual((status, answer["accepted"], answer["job"]["step"]), (200, 10, 20))
            self.assertEqual(answer["job"]["progress"], 0.2)
            self.assertEqual(stored_steps(daemon, "remote"), list(range(1, 21)))
            history = call(daemon, "GET", "/api/v1/jobs/remote/metrics?after_step=9&limit=2")[1]
            self.assertEqual([p["scalars"] for p in history["points"]],
                             [{"val_loss": 2.2 / 10, "lr": 0.1}, {"val_loss": 2.2 / 11}])
            scalars = dict(line.rsplit(" ", 1)
                           for line in metric_lines(daemon, "vapor_job_scalar{"))
            labels = f'vapor_job_scalar{{job_id="{created["id"]}",job_name="remote",'
            self.assertEqual(set(scalars), {labels + 'name="val_loss"}', labels + 'name="lr"}'})
            self.assertAlmostEqual(float(scalars[labels + 'name="val_loss"}']), 2.2 / 20, 12,
                                   "each name's latest value")
            self.assertEqual(float(scalars[labels + 'name="lr"}']), 0.1)

            async def feed():
                async with websockets.connect(daemon.ws_url()) as ws:
                    await ws.recv()  # hello
                    await ws.send(json.dumps({"type": "subscribe", "job_ids": [created["id"]],
                                              "since_step": 18}))
                    seen = []
                    while len(seen) < 4:
                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                        if message["type"] == "point":
                            seen.append(message)
                            if len(seen) == 2:  # replayed 19, 20; now a live batch
                                call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     points(21, 22, val_loss=lambda s: 2.2 / s), push)
                    return seen
            seen = asyncio.run(feed())
            self.assertEqual([m["step"] for m in seen], [19, 20, 21, 22])
            for message in seen:
                self.assertAlmostEqual(message["scalars"]["val_loss"], 2.2 / message["step"], 15)

            # A batch is atomic: one bad point and nothing of it is recorded.
            bad = points(23, 25)
            bad[1]["loss"] = "low"
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points", bad, push)
            self.assertEqual((status, answer["error"]["code"]), (400, "invalid_points"))
            self.assertEqual(answer["error"]["message"],
                             'point 1: "loss": expected a number, null, "NaN" or "Infinity", '
                             'got "low"')
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     b'{"step":23,"loss":1}\n{"step":24}\n', push,
                                     "application/x-ndjson")
            self.assertEqual(status, 400)
            self.assertIn("point 1 (line 2)", answer["error"]["message"])
            self.assertEqual(stored_steps(daemon, "remote")[-1], 22)

            # Steps only go forward.
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     points(22, 23), push)
            self.assertEqual((status, answer["error"]["code"]), (409, "step_not_increasing"))
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     [{"step": 30, "loss": 1}, {"step": 29, "loss": 1}], push)
            self.assertEqual((status, answer["error"]["code"]), (400, "invalid_points"))

            # The push token opens this job's points and finish, and nothing else.
            for method, path, body in [("POST", "/api/v1/jobs/remote/stop", None),
                                       ("POST", "/api/v1/jobs/other/points", points(1, 1)),
                                       ("POST", "/api/v1/jobs/other/finish",
                                        {"state": "complete"}),
                                       ("POST", "/api/v1/jobs", {"name": "x", "kind": "push"})]:
                status, answer, headers = call(daemon, method, path, body, push)
                self.assertEqual((status, answer["error"]["code"]), (401, "unauthorized"), path)
            status, _, _ = call(daemon, "POST", "/api/v1/jobs/remote/points", points(23, 23),
                                "f" * 64)
            self.assertEqual(status, 401, "a wrong token")
            status, _, _ = call(daemon, "POST", "/api/v1/jobs/remote/points", points(23, 23))
            self.assertEqual(status, 401, "no token")
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     points(23, 24), api)
            self.assertEqual((status, answer["accepted"]), (200, 2), "the API token may push")

            # Finish: complete, then nothing more.
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/finish",
                                     {"state": "complete"}, push)
            self.assertEqual((status, answer["state"], answer["step"]), (200, "complete", 24))
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/points",
                                     points(25, 25), push)
            self.assertEqual((status, answer["error"]["code"]), (409, "job_finished"))
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/remote/finish",
                                     {"state": "failed"}, push)
            self.assertEqual((status, answer["error"]["code"]), (409, "job_finished"))

            # A trainer's own failure pages like any other, with its reason.
            call(daemon, "POST", "/api/v1/jobs/other/points", points(1, 3), api)
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/other/finish",
                                     {"state": "failed", "reason": "out_of_memory"}, api)
            self.assertEqual((status, answer["state"], answer["reason"]),
                             (200, "failed", "out_of_memory"))
            self.assertTrue(any('reason="out_of_memory"' in line for line in
                                metric_lines(daemon, "vapor_job_failure_info{")))
            status, answer, _ = call(daemon, "POST", "/api/v1/jobs/other/finish",
                                     {"state": "failed", "reason": "Out Of Memory"}, api)
            self.assertEqual(status, 400)

    def test_a_silent_push_run_fails_stalled(self):
        queue = "jobs:\n  - {name: quiet, kind: push, stall_timeout: 1s}\n"
        with Vapord(VAPORD, queue) as daemon:
            time.sleep(1.5)
            self.assertEqual(job(daemon, "quiet")["state"], "queued",
                             "a push job that has not started cannot stall")
            status, _, _ = call(daemon, "POST", "/api/v1/jobs/quiet/points", points(1, 5),
                                daemon.token())
            self.assertEqual(status, 200)
            self.assertTrue(eventually(lambda: job(daemon, "quiet")["state"] == "failed", 5))
            self.assertEqual(job(daemon, "quiet")["reason"], "stalled")

    def test_a_push_run_outlives_a_restart_of_vapord(self):
        queue = "jobs:\n  - {name: from-file, kind: push, epochs: 1, steps_per_epoch: 100}\n"
        daemon = Vapord(VAPORD, queue)
        with daemon:
            api = daemon.token()
            status, created, _ = call(daemon, "POST", "/api/v1/jobs",
                                      {"name": "from-api", "kind": "push"}, api)
            push = created["push_token"]
            for name, token in (("from-file", api), ("from-api", push)):
                # lr is reported until step 29: the last point (30) carries no scalar.
                status, _, _ = call(daemon, "POST", f"/api/v1/jobs/{name}/points",
                                    points(1, 29, lr=lambda s: 0.5) + points(30, 30), token)
                self.assertEqual(status, 200)
            daemon.process.send_signal(signal.SIGTERM)
            self.assertEqual(daemon.process.wait(timeout=10), 0)
            daemon.__enter__()  # the same folder and database
            for name, token in (("from-file", api), ("from-api", push)):
                self.assertEqual((job(daemon, name)["state"], job(daemon, name)["step"]),
                                 ("running", 30), name)
                self.assertEqual(job(daemon, name)["scalars"], {"lr": 0.5},
                                 "each scalar's latest value survives the restart")
                status, _, _ = call(daemon, "POST", f"/api/v1/jobs/{name}/points",
                                    points(30, 30), token)
                self.assertEqual(status, 409, "step 30 is stored already")
                status, answer, _ = call(daemon, "POST", f"/api/v1/jobs/{name}/points",
                                         points(31, 40), token)
                self.assertEqual((status, answer["accepted"]), (200, 10),
                                 f"{name}: the push token is still good after the restart")
                self.assertEqual(stored_steps(daemon, name), list(range(1, 41)))

    def test_a_store_that_falls_behind_answers_429_and_loses_nothing(self):
        queue = "jobs:\n  - {name: busy, kind: push}\n"
        daemon = Vapord(VAPORD, queue, store_config="flush_interval: 50ms, max_pending_rows: 500, "
                                                    "busy_timeout: 50ms")
        with daemon:
            api = daemon.token()
            self.assertEqual(call(daemon, "POST", "/api/v1/jobs/busy/points", points(1, 10),
                                  api)[0], 200)
            locker = sqlite3.connect(f"{daemon.path}/vapor.db", timeout=30,
                                     isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            try:
                # Commits fail while the lock is held; the batches pile up until the store is
                # more than max_pending_rows behind, and then a batch is refused whole.
                last, refusal = 10, None
                for _ in range(20):
                    status, answer, headers = call(daemon, "POST", "/api/v1/jobs/busy/points",
                                                   points(last + 1, last + 300), api)
                    if status == 429:
                        refusal = (answer, headers)
                        break
                    self.assertEqual(status, 200, answer)
                    last += 300
                    time.sleep(0.1)
                self.assertIsNotNone(refusal, "no 429 while the store could not commit")
                answer, headers = refusal
                self.assertEqual((answer["error"]["code"], headers["Retry-After"]),
                                 ("store_behind", "1"))
                self.assertGreater(last, 500)
                self.assertEqual(job(daemon, "busy")["step"], last, "nothing of it recorded")
            finally:
                locker.execute("COMMIT")
                locker.close()
            self.assertTrue(eventually(lambda: call(daemon, "POST", "/api/v1/jobs/busy/points",
                                                    points(last + 1, last + 10), api)[0] == 200,
                                       20))
            self.assertEqual(stored_steps(daemon, "busy"), list(range(1, last + 11)))

    def test_vaporctl_push_sends_ndjson_in_batches_and_stops_at_a_refused_one(self):
        with Vapord(VAPORD, "jobs: []\n") as daemon:
            status, created, _ = call(daemon, "POST", "/api/v1/jobs",
                                      {"name": "piped", "kind": "push"}, daemon.token())
            env = {**os.environ, "VAPOR_PUSH_TOKEN": created["push_token"]}
            source = os.path.join(daemon.path, "points.ndjson")
            with open(source, "wb") as f:
                f.write(ndjson(points(1, 25, lr=lambda s: 0.01)))

            def vaporctl(*args, stdin=None):
                return subprocess.run([VAPORCTL, "--url", daemon.url(""), "push", "piped", *args],
                                      input=stdin, capture_output=True, text=True, env=env,
                                      timeout=30)
            done = vaporctl(source, "--batch", "10")
            self.assertEqual((done.returncode, done.stdout),
                             (0, "pushed 25 points to piped in 3 batches\n"), done.stderr)
            done = vaporctl("-", stdin=ndjson(points(26, 30)).decode())
            self.assertEqual((done.returncode, done.stdout),
                             (0, "pushed 5 points to piped in 1 batch\n"), done.stderr)
            self.assertEqual(stored_steps(daemon, "piped"), list(range(1, 31)))

            lines = ndjson(points(31, 40)).decode().splitlines()
            lines[6] = '{"step": 37}'
            refused = vaporctl("-", "--batch", "4", stdin="\n".join(lines) + "\n")
            self.assertEqual(refused.returncode, 2, refused.stderr)
            self.assertIn("the batch of lines 5 to 8 was refused; nothing of it was recorded",
                          refused.stderr)
            self.assertIn('point 2 (line 3): "loss" is missing', refused.stderr)
            self.assertEqual(stored_steps(daemon, "piped")[-1], 34, "the first batch went in")

    def test_the_example_trainer_pushes_a_real_run_to_its_end(self):
        trainer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config",
                               "demo", "spiral_mlp.py")
        with Vapord(VAPORD, "jobs: []\n") as daemon:
            status, created, _ = call(daemon, "POST", "/api/v1/jobs", {
                "name": "spiral-push", "kind": "push", "epochs": 1, "steps_per_epoch": 45},
                daemon.token())
            run = subprocess.run(["/usr/bin/python3", trainer, "--steps", "45", "--step-seconds",
                                  "0", "--push", daemon.url(""), "--job", "spiral-push"],
                                 env={**os.environ, "VAPOR_PUSH_TOKEN": created["push_token"]},
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 0, run.stderr)
            done = job(daemon, "spiral-push")
            self.assertEqual((done["state"], done["step"], done["progress"]), ("complete", 45, 1))
            self.assertEqual(set(done["scalars"]), {"val_loss", "val_accuracy", "lr"})
            self.assertLess(done["loss"], 1.0, "it learnt something")


if __name__ == "__main__":
    unittest.main(verbosity=2)
