"""The WebSocket feed and /metrics of the real vapord, checked with real peers: Debian's
python3-websockets client and promtool."""

import asyncio
import json
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

import websockets

from vapor_testing import Vapord

VAPORD = sys.argv.pop(1)

QUEUE = """jobs:
  - name: completes
    epochs: 2
    steps_per_epoch: 60
    step_interval: 20ms
    start: {start}
  - name: crashes
    epochs: 1
    steps_per_epoch: 100
    step_interval: 20ms
    start: {start}
    faults: {{fail_at_step: 30}}
"""


def start_job(daemon, name):
    request = urllib.request.Request(daemon.url(f"/api/v1/jobs/{name}/start"), method="POST",
                                     headers={"Authorization": f"Bearer {daemon.token()}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def receive(ws, expected_seq):
    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
    assert message["seq"] == expected_seq, f"seq {message['seq']} after {expected_seq - 1}"
    return message


class FeedTest(unittest.TestCase):
    def test_hello_then_points_then_state_for_a_fast_job(self):
        async def run(daemon):
            async with websockets.connect(daemon.ws_url()) as ws:
                hello = await receive(ws, 0)
                self.assertEqual(hello["type"], "hello")
                names = sorted(job["name"] for job in hello["jobs"])
                self.assertEqual(names, ["completes", "crashes"])
                ids = {job["name"]: job["id"] for job in hello["jobs"]}
                # Started only now, so this client sees each job from its first step.
                start_job(daemon, "completes")
                start_job(daemon, "crashes")
                seq, points, states = 1, [], []
                while not any(s["to"] == "complete" for s in states) or \
                        not any(s["to"] == "failed" for s in states):
                    message = await receive(ws, seq)
                    seq += 1
                    if message["type"] == "point" and message["job_id"] == ids["completes"]:
                        points.append(message)
                    if message["type"] == "state":
                        states.append(message)
                steps = [p["step"] for p in points]
                self.assertEqual(steps, list(range(1, 121)))
                self.assertTrue(all(0 < p["loss"] for p in points))
                failed = next(s for s in states if s["to"] == "failed")
                self.assertEqual(failed["job_id"], ids["crashes"])
                self.assertEqual(failed["reason"], "crashed")

        with Vapord(VAPORD, QUEUE.format(start="manual")) as daemon:
            asyncio.run(run(daemon))

    def test_subscribe_since_step_replays_contiguously(self):
        async def run(daemon):
            await asyncio.sleep(0.8)  # history builds up
            async with websockets.connect(daemon.ws_url()) as ws:
                hello = await receive(ws, 0)
                job_id = next(j["id"] for j in hello["jobs"] if j["name"] == "completes")
                await ws.send(json.dumps(
                    {"type": "subscribe", "job_ids": [job_id], "since_step": 5}))
                seq = 1
                while (await receive(ws, seq))["type"] != "subscribed":
                    seq += 1  # live messages sent before the subscription took effect
                seq += 1
                steps = []
                while True:
                    message = await receive(ws, seq)
                    seq += 1
                    self.assertEqual(message["job_id"], job_id)
                    if message["type"] == "point":
                        steps.append(message["step"])
                    if message["type"] == "state" and message["to"] == "complete":
                        break
                self.assertEqual(steps, list(range(6, 121)), "no gap, no duplicate")

        with Vapord(VAPORD, QUEUE.format(start="auto")) as daemon:
            asyncio.run(run(daemon))

    def test_per_job_since_replays_points_and_state_changes_and_says_when_it_is_live(self):
        async def run(daemon):
            async with websockets.connect(daemon.ws_url()) as ws:
                hello = await receive(ws, 0)
                ids = {job["name"]: job["id"] for job in hello["jobs"]}
                await ws.send(json.dumps({"type": "subscribe", "since": {"7x": 1}}))
                error = await receive(ws, 1)
                self.assertEqual((error["type"], error["message"]),
                                 ("error", 'since: "7x" is not a job id'))
                await ws.send(json.dumps({"type": "subscribe", "job_ids": list(ids.values()),
                                          "since": {str(ids["completes"]): 100,
                                                    str(ids["crashes"]): 25}}))
                seq = 2
                ack = await receive(ws, seq)
                self.assertEqual(ack["since"], {str(ids["completes"]): 100,
                                                str(ids["crashes"]): 25})
                steps = {ids["completes"]: [], ids["crashes"]: []}
                ends = {}  # job -> (the state it replayed, the steps replayed before it)
                caught_up = {}
                while len(caught_up) < 2:
                    seq += 1
                    message = await receive(ws, seq)
                    job = message.get("job_id")
                    self.assertNotIn(job, caught_up, "nothing after caught_up of a finished job")
                    if message["type"] == "point":
                        steps[job].append(message["step"])
                    elif message["type"] == "state":
                        self.assertTrue(message["replay"])
                        ends[job] = (message["to"], message["reason"], len(steps[job]))
                    elif message["type"] == "caught_up":
                        caught_up[job] = message["step"]
                self.assertEqual(steps[ids["completes"]], list(range(101, 121)))
                self.assertEqual(steps[ids["crashes"]], list(range(26, 30)))
                # The stored state changes come back in step order: after the last point.
                self.assertEqual(ends, {ids["completes"]: ("complete", None, 20),
                                        ids["crashes"]: ("failed", "crashed", 4)})
                self.assertEqual(caught_up, {ids["completes"]: 120, ids["crashes"]: 29})

        with Vapord(VAPORD, QUEUE.format(start="auto")) as daemon:
            def finished():
                jobs = json.loads(daemon.get("/api/v1/jobs")[1])["jobs"]
                return {job["state"] for job in jobs} == {"complete", "failed"}
            deadline = time.monotonic() + 20
            while not finished() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertTrue(finished(), daemon.log())
            asyncio.run(run(daemon))


class ThreadingTest(unittest.TestCase):
    def test_vapord_runs_two_threads_the_loop_and_the_store(self):
        """vapord runs its timers, HTTP, WebSocket feed, metrics and reloads on one event-loop
        thread and SQLite on one store thread (DESIGN.md, Threads), under load and after a
        reload alike: a thread count that grows is a leak; a third thread needs its own
        ThreadSanitizer coverage (the tsan preset runs the suite)."""
        def threads(pid):
            with open(f"/proc/{pid}/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))

        async def run(daemon):
            async with websockets.connect(daemon.ws_url()) as ws:
                await receive(ws, 0)
                start_job(daemon, "completes")
                seq = 1
                for _ in range(20):
                    await receive(ws, seq)
                    seq += 1
                daemon.get("/api/v1/jobs")
                daemon.get("/metrics")
                daemon.process.send_signal(signal.SIGHUP)  # a queue reload
                for _ in range(50):
                    if "loaded (SIGHUP)" in daemon.log():
                        break
                    await asyncio.sleep(0.1)
                self.assertIn("loaded (SIGHUP)", daemon.log())
                return threads(daemon.process.pid)

        with Vapord(VAPORD, QUEUE.format(start="manual")) as daemon:
            with open(f"/proc/{daemon.process.pid}/maps") as maps:
                tsan = "libtsan" in maps.read()  # ThreadSanitizer runs a thread of its own
            self.assertEqual(asyncio.run(run(daemon)), 3 if tsan else 2)


class MetricsTest(unittest.TestCase):
    def test_live_metrics_pass_promtool(self):
        with Vapord(VAPORD, QUEUE.format(start="auto")) as daemon:
            asyncio.run(asyncio.sleep(1.0))
            daemon.get("/api/v1/jobs")
            status, text = daemon.get("/metrics")
            self.assertEqual(status, 200)
            for name in ["vapor_job_loss", "vapor_job_state", "vapor_jobs", "vapor_build_info",
                         "vapor_job_progress_ratio", "vapor_http_requests_total"]:
                self.assertIn(name, text)
            self.assertIn('job_name="completes"', text)
            check = subprocess.run(["promtool", "check", "metrics"], input=text,
                                   capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            self.assertEqual(check.stdout + check.stderr, "", "promtool lint findings")


if __name__ == "__main__":
    unittest.main(verbosity=2)
