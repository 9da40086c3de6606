"""Command jobs with real trainer processes (trainers/toy_trainer.py): vapord starts them from the
queue file, stores exactly the points they write to VAPOR_METRICS_FD, and ends each job the way a
user expects: exit 0 complete, exit N failed (exit_code), a signal failed (signal), a NaN failed
and its process group gone, a stall failed and gone, a stop graceful or forced after stop_grace.
Bad metric lines are counted and noted in the job's log, never fatal. No trainer outlives vapord.

Usage: command_jobs_test.py VAPORD VAPORCTL"""

import asyncio
import json
import os
import signal
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
TRAINER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainers", "toy_trainer.py")
PYTHON = "/usr/bin/python3"


def command_job(name, *trainer_args, extra=""):
    argv = json.dumps([PYTHON, TRAINER, *trainer_args])
    return (f"  - name: {name}\n    kind: command\n    command: {argv}\n"
            f"    env: {{TOY_SETTING: \"on\"}}\n    stop_grace: 1s\n{extra}")


def jobs(daemon):
    return {job["name"]: job for job in json.loads(daemon.get("/api/v1/jobs")[1])["jobs"]}


def finished(daemon, name):
    job = jobs(daemon).get(name)
    return job if job and job["state"] in ("complete", "failed", "stopped") else None


def points(daemon, name):
    return json.loads(daemon.get(f"/api/v1/jobs/{name}/metrics?limit=10000")[1])["points"]


def post(daemon, path):
    request = urllib.request.Request(daemon.url(path), method="POST",
                                     headers={"Authorization": f"Bearer {daemon.token()}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = read_text(f"/proc/{pid}/stat")
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"  # a zombie is not alive


def read_text(path):
    with open(path) as f:
        return f.read()


def log_of(daemon, job_id):
    with open(os.path.join(daemon.path, "logs", f"job-{job_id}.log"), errors="replace") as f:
        return f.read()


def get_log(daemon, name, query=""):
    """(status, text, X-Log-Size) of GET /api/v1/jobs/NAME/log."""
    try:
        with urllib.request.urlopen(daemon.url(f"/api/v1/jobs/{name}/log{query}"),
                                    timeout=10) as response:
            return response.status, response.read().decode(), response.headers["X-Log-Size"]
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), None


def metric(daemon, name):
    for line in daemon.get("/metrics")[1].splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class CommandJobsTest(unittest.TestCase):
    def test_how_each_trainer_ends_is_how_its_job_ends(self):
        queue = "jobs:\n" + "".join([
            command_job("completes", "40"),
            command_job("exits-3", "5", "--end", "exit:3"),
            command_job("segfaults", "5", "--end", "signal:SIGSEGV"),
            command_job("nan-loss", "6", "--end", "nan"),
            command_job("bad-lines", "10", "--bad-lines", "--long-line", "200000"),
        ]) + "  - {name: simulated, epochs: 1, steps_per_epoch: 5, step_interval: 10ms}\n"
        config = "scheduler: {max_concurrent: 8}\njobs: {max_metric_line_bytes: 65536}\n"
        with Vapord(VAPORD, queue, config) as daemon:
            names = ["completes", "exits-3", "segfaults", "nan-loss", "bad-lines"]
            self.assertTrue(eventually(lambda: all(finished(daemon, n) for n in names), 30),
                            daemon.log())
            state = jobs(daemon)

            done = state["completes"]
            self.assertEqual((done["state"], done["reason"], done["exit_code"]), ("complete", None, 0))
            stored = points(daemon, "completes")
            self.assertEqual([p["step"] for p in stored], list(range(1, 41)),
                             "exactly the points the trainer wrote")
            self.assertAlmostEqual(stored[-1]["loss"], 2.0 * 2.718281828459045 ** -2 + 0.1, 9)
            log = log_of(daemon, done["id"])
            self.assertIn(f"VAPOR_ATTEMPT=1 VAPOR_JOB_ID={done['id']} VAPOR_JOB_NAME=completes "
                          "VAPOR_METRICS_FD=3", log)
            self.assertIn("TOY_SETTING=on", log)
            self.assertIn("vapord: the process exited with code 0", log)

            # The same log over the API and vaporctl, whole, as a tail, and from an offset.
            status, text, size = get_log(daemon, "completes")
            self.assertEqual((status, text, int(size)), (200, log, len(log.encode())))
            self.assertEqual(get_log(daemon, "completes", "?tail_bytes=10")[1], log[-10:])
            self.assertEqual(get_log(daemon, "completes", f"?after_byte={size}")[1], "")
            self.assertEqual(get_log(daemon, "completes", "?after_byte=5")[1], log[5:])
            status, body, _ = get_log(daemon, "simulated")
            self.assertEqual(status, 404)
            self.assertEqual(json.loads(body)["error"]["code"], "no_log")
            for follow in ([], ["-f"]):
                shown = subprocess.run([VAPORCTL, "--url", daemon.url(""), "logs", "completes",
                                        *follow], capture_output=True, text=True, timeout=30)
                self.assertEqual(shown.returncode, 0, shown.stderr)
                self.assertEqual(shown.stdout, log, "logs -f ends once the job has ended")

            self.assertEqual((state["exits-3"]["state"], state["exits-3"]["reason"],
                              state["exits-3"]["exit_code"]), ("failed", "exit_code", 3))
            self.assertEqual((state["segfaults"]["state"], state["segfaults"]["reason"],
                              state["segfaults"]["signal"]), ("failed", "signal", "SIGSEGV"))
            self.assertEqual((state["nan-loss"]["state"], state["nan-loss"]["reason"]),
                             ("failed", "nonfinite_loss"))
            self.assertEqual(len(points(daemon, "nan-loss")), 6, "the NaN point is kept")

            bad = state["bad-lines"]
            self.assertEqual(bad["state"], "complete", "bad lines are never fatal")
            self.assertEqual([p["step"] for p in points(daemon, "bad-lines")], list(range(1, 11)))
            self.assertEqual(metric(daemon, "vapor_job_metric_lines_rejected_total"), 4.0)
            bad_log = log_of(daemon, bad["id"])
            for note in ("metric line 3 rejected: not valid JSON",
                         "metric line 4 rejected: step 1 does not come after step 2",
                         "metric line 5 rejected: \"step\" is missing",
                         "rejected: longer than 65536 bytes"):
                self.assertIn(note, bad_log)

    def test_stall_and_stops_end_the_whole_process_group(self):
        queue = "jobs:\n" + "".join([
            command_job("stalls", "3", "--end", "hang", "--pidfile", "stalls.pid"),
            command_job("stop-graceful", "100000", "--interval", "0.05", "--end", "trap-term",
                        "--pidfile", "graceful.pid"),
            command_job("stop-forced", "100000", "--interval", "0.05", "--end", "ignore-term",
                        "--pidfile", "forced.pid"),
        ])
        config = "scheduler: {max_concurrent: 8, stall_timeout: 2s}\n"
        with Vapord(VAPORD, queue, config) as daemon:

            def pid_file(name):  # the trainers' cwd is the queue file's folder
                return os.path.join(daemon.path, name)

            files = ("stalls.pid", "graceful.pid", "forced.pid")
            self.assertTrue(eventually(lambda: all(os.path.exists(pid_file(f)) and
                                                   read_text(pid_file(f)) for f in files), 15),
                            daemon.log())
            pids = {f: int(read_text(pid_file(f))) for f in files}
            self.assertTrue(eventually(lambda: jobs(daemon)["stop-graceful"]["step"] >= 5, 15))

            self.assertTrue(eventually(lambda: finished(daemon, "stalls"), 15), daemon.log())
            self.assertEqual(jobs(daemon)["stalls"]["reason"], "stalled")
            self.assertTrue(eventually(lambda: not alive(pids["stalls.pid"]), 5),
                            "a stalled trainer's group is ended")

            self.assertEqual(post(daemon, "/api/v1/jobs/stop-graceful/stop"), 200)
            self.assertEqual(post(daemon, "/api/v1/jobs/stop-forced/stop"), 200)
            started = time.monotonic()
            self.assertTrue(eventually(lambda: not alive(pids["graceful.pid"]), 5))
            self.assertTrue(eventually(lambda: not alive(pids["forced.pid"]), 5))
            self.assertGreaterEqual(time.monotonic() - started, 0.9, "SIGKILL after stop_grace")
            state = jobs(daemon)
            self.assertEqual(state["stop-graceful"]["state"], "stopped")
            self.assertEqual(state["stop-forced"]["state"], "stopped")
            graceful_log = log_of(daemon, state["stop-graceful"]["id"])
            self.assertIn("SIGTERM: saving and leaving", graceful_log)
            self.assertNotIn("SIGKILL sent", graceful_log, "SIGTERM was enough")
            self.assertIn("SIGKILL sent to the process group",
                          log_of(daemon, state["stop-forced"]["id"]))

    def test_no_trainer_outlives_vapord_and_the_next_start_says_so(self):
        queue = "jobs:\n" + command_job("long-run", "100000", "--interval", "0.05",
                                        "--pidfile", "long.pid")
        daemon = Vapord(VAPORD, queue)
        with daemon:
            pid_path = os.path.join(daemon.path, "long.pid")
            self.assertTrue(eventually(lambda: os.path.exists(pid_path) and
                                       read_text(pid_path), 15))
            trainer = int(read_text(pid_path))
            self.assertTrue(eventually(lambda: jobs(daemon)["long-run"]["step"] >= 10, 15))
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait()
            self.assertTrue(eventually(lambda: not alive(trainer), 5),
                            "the trainer died with vapord (PR_SET_PDEATHSIG)")
            daemon.__enter__()  # the same folder and database
            job = jobs(daemon)["long-run"]
            self.assertEqual((job["state"], job["reason"]), ("failed", "daemon_restart"))
            self.assertGreaterEqual(len(points(daemon, "long-run")), 1,
                                    "what was committed before stays")

    def test_on_daemon_restart_requeue_runs_it_again_as_the_next_attempt(self):
        queue = "jobs:\n" + command_job("resumes", "60", "--interval", "0.05",
                                        extra="    on_daemon_restart: requeue\n")
        daemon = Vapord(VAPORD, queue)
        with daemon:
            self.assertTrue(eventually(lambda: jobs(daemon)["resumes"]["step"] >= 10, 15))
            time.sleep(0.3)  # a commit (store.flush_interval 100ms) holds some points
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait()
            daemon.__enter__()
            self.assertTrue(eventually(lambda: finished(daemon, "resumes"), 20), daemon.log())
            job = jobs(daemon)["resumes"]
            self.assertEqual((job["state"], job["attempt"], job["exit_code"]), ("complete", 2, 0))
            # The second attempt reported steps 1..60 again: they replaced the first's.
            self.assertEqual([p["step"] for p in points(daemon, "resumes")], list(range(1, 61)))
            self.assertIn("VAPOR_ATTEMPT=2", log_of(daemon, job["id"]))
            self.assertIn("queued again (on_daemon_restart: requeue, attempt 2)", daemon.log())

    def test_a_trainer_that_floods_its_output_keeps_only_the_newest_bytes_on_disk(self):
        queue = "jobs:\n" + command_job("floods", "5", "--flood-mib", "24")
        config = "jobs: {log_max_bytes: 1048576}\n"
        with Vapord(VAPORD, queue, config) as daemon:
            self.assertTrue(eventually(lambda: finished(daemon, "floods"), 60), daemon.log())
            job = jobs(daemon)["floods"]
            self.assertEqual(job["state"], "complete")
            self.assertEqual(len(points(daemon, "floods")), 5, "the points still came through")
            path = os.path.join(daemon.path, "logs", f"job-{job['id']}.log")
            info = os.stat(path)
            self.assertGreater(info.st_size, 24_000_000, "the file keeps its length")
            self.assertLess(info.st_blocks * 512, 2 * 1024 * 1024,
                            "only about log_max_bytes stay allocated on disk")
            status, text, _ = get_log(daemon, "floods", "?tail_bytes=8388608")
            self.assertEqual(status, 200)
            self.assertLessEqual(len(text), 1024 * 1024 + 4096)
            self.assertIn("flood line 00024575", text, "the newest lines are kept")
            self.assertTrue(text.rstrip().endswith("the process exited with code 0"))

    def test_a_trainer_writing_as_fast_as_it_can_loses_no_point(self):
        # ~100,000 lines in a second or two from python: every one stored, in order.
        queue = "jobs:\n" + command_job("fast-writer", "100000")
        with Vapord(VAPORD, queue) as daemon:
            self.assertTrue(eventually(lambda: finished(daemon, "fast-writer"), 60), daemon.log())
            job = jobs(daemon)["fast-writer"]
            self.assertEqual((job["state"], job["step"]), ("complete", 100000))
            self.assertEqual(metric(daemon, "vapor_job_metric_lines_rejected_total"), 0.0)
            stored = json.loads(daemon.get("/api/v1/jobs/fast-writer/metrics?after_step=99990")[1])
            self.assertEqual([p["step"] for p in stored["points"]], list(range(99991, 100001)))
            page = json.loads(daemon.get("/api/v1/jobs/fast-writer/metrics?limit=10000")[1])
            self.assertEqual([p["step"] for p in page["points"]], list(range(1, 10001)))

    def test_named_scalars_reach_the_history_api_metrics_and_feed(self):
        # The toy trainer reports val_loss at every step and lr at every fifth.
        queue = "jobs:\n" + command_job("scalars", "400", "--interval", "0.02", "--end", "hang")
        with Vapord(VAPORD, queue) as daemon:
            self.assertTrue(eventually(lambda: jobs(daemon)["scalars"]["step"] >= 20, 30),
                            daemon.log())

            async def feed():
                async with websockets.connect(daemon.ws_url()) as ws:
                    hello = json.loads(await ws.recv())
                    job_id = next(j["id"] for j in hello["jobs"] if j["name"] == "scalars")
                    await ws.send(json.dumps(
                        {"type": "subscribe", "job_ids": [job_id], "since_step": 0}))
                    replayed, live = [], []
                    while len(live) < 10:
                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
                        if message["type"] == "point" and message["job_id"] == job_id:
                            (replayed if message.get("replay") else live).append(message)
                    return replayed, live

            replayed, live = asyncio.run(feed())
            self.assertGreaterEqual(len(replayed), 20)
            for message in replayed + live:
                step, scalars = message["step"], message["scalars"]
                self.assertAlmostEqual(scalars["val_loss"], message["loss"] * 1.1, 12)
                if step % 5 == 0:
                    self.assertAlmostEqual(scalars["lr"], 0.1 / step, 15)
                else:
                    self.assertNotIn("lr", scalars, "a point carries what the trainer wrote")

            stored = points(daemon, "scalars")
            self.assertEqual(stored[4]["scalars"], {"val_loss": stored[4]["loss"] * 1.1,
                                                    "lr": 0.1 / 5})
            self.assertEqual(stored[5]["scalars"], {"val_loss": stored[5]["loss"] * 1.1})

            summary = jobs(daemon)["scalars"]
            self.assertEqual(set(summary["scalars"]), {"val_loss", "lr"},
                             "the job summary keeps each scalar's latest value")
            scraped = daemon.get("/metrics")[1]
            self.assertIn(f'vapor_job_scalar{{job_id="{summary["id"]}",job_name="scalars",'
                          'name="val_loss"}', scraped)
            self.assertIn('name="lr"}', scraped)
            checked = subprocess.run(["promtool", "check", "metrics"], input=scraped,
                                     capture_output=True, text=True, timeout=30)
            self.assertEqual((checked.returncode, checked.stdout + checked.stderr), (0, ""))
            self.assertEqual(post(daemon, "/api/v1/jobs/scalars/stop"), 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
