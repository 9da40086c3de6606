"""The database's file system fills up while jobs run (a 16 MiB tmpfs the test mounts, filled
by a filler file), then space comes back (the filler is deleted). What a user notices: vapord
stays up and answers, `vapor_store_errors_total` counts the failed commits, the jobs pause (their
step stops advancing, still `running`) instead of dropping points, and after the space returns
writing resumes: every job's points run 1..jobs.step with no gap.

Needs root to mount a tmpfs; without it the test is skipped (CTest shows it as skipped)."""

import os
import subprocess
import tempfile
import time
import unittest

import faults_harness as harness
from faults_harness import Vapord, eventually, gapless, job_yaml, queue_yaml

JOBS = 10


def fill(path):
    """Writes zeros to `path` until the file system is full; returns the bytes written."""
    written = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            block = b"\0" * chunk
            try:
                while True:
                    written += os.write(descriptor, block)
            except OSError as error:
                if error.errno != 28:  # ENOSPC
                    raise
    finally:
        os.close(descriptor)
    return written


class DiskFullTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root; run the test as root to cover "
                          "a full disk")
        self.mount_point = tempfile.mkdtemp(prefix="vapor-disk-full-")
        self.addCleanup(os.rmdir, self.mount_point)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", self.mount_point],
            capture_output=True, text=True)
        if mounted.returncode != 0:
            self.skipTest("cannot mount a tmpfs here (" + mounted.stderr.strip() +
                          "); a full disk is not covered")
        self.addCleanup(subprocess.run, ["umount", "-l", self.mount_point], check=False)

    def test_jobs_pause_without_losing_points_and_resume_when_space_returns(self):
        daemon = Vapord(
            harness.vapord_binary(),
            queue_yaml([job_yaml(f"job-{i:02d}", 1_000_000, "2ms") for i in range(JOBS)]),
            {"scheduler": {"max_concurrent": JOBS},
             # 10 jobs at 2 ms make 5,000 rows a second: the jobs pause after about 2 s of
             # failed commits.
             "store": {"max_pending_rows": 10000}},
            database=os.path.join(self.mount_point, "vapor.db"))
        self.addCleanup(daemon.close)  # runs before the unmount
        daemon.start()
        self.assertTrue(eventually(lambda: len(daemon.db_steps()) == JOBS and
                                   all(row[0] >= 100 for row in daemon.db_steps().values()),
                                   30, interval=0.2), daemon.log_tail())
        self.assertEqual(daemon.metric("vapor_store_errors_total"), 0.0)

        filler = os.path.join(self.mount_point, "filler")
        fill(filler)
        self.assertTrue(eventually(lambda: daemon.metric("vapor_store_errors_total") > 0, 20,
                                   interval=0.2),
                        "no commit failed on a full file system:\n" + daemon.log_tail())
        self.assertTrue(eventually(lambda: daemon.logged("pausing jobs until commits catch up"),
                                   30, interval=0.2), daemon.log_tail())

        # Paused: up and answering, every job still running, no step taken, nothing committed.
        time.sleep(0.5)
        paused = daemon.jobs()
        committed_paused = daemon.db_steps()
        errors_paused = daemon.metric("vapor_store_errors_total")
        time.sleep(1.5)
        self.assertTrue(daemon.alive())
        self.assertEqual(daemon.get("/healthz")[0], 200)
        self.assertEqual(daemon.get("/readyz")[0], 200)
        still = daemon.jobs()
        self.assertEqual({name: job["step"] for name, job in still.items()},
                         {name: job["step"] for name, job in paused.items()},
                         "jobs kept stepping with the disk full")
        self.assertTrue(all(job["state"] == "running" for job in still.values()), still)
        self.assertEqual(daemon.db_steps(), committed_paused)
        self.assertGreater(daemon.metric("vapor_store_errors_total"), errors_paused,
                           "failed retries are counted")
        # The points held in memory are served: the API shows them before they are on disk.
        name, job = next(iter(paused.items()))
        points = daemon.get_json(f"/api/v1/jobs/{name}/metrics?after_step="
                                 f"{committed_paused[name][0]}&limit=10000")["points"]
        self.assertEqual([point["step"] for point in points],
                         list(range(committed_paused[name][0] + 1, job["step"] + 1)))

        os.remove(filler)
        self.assertTrue(eventually(lambda: daemon.logged("commits succeed again"), 20,
                                   interval=0.2), daemon.log_tail())
        self.assertTrue(eventually(lambda: daemon.logged("caught up; jobs resume"), 20,
                                   interval=0.2), daemon.log_tail())
        self.assertTrue(eventually(
            lambda: all(job["step"] > paused[name]["step"] + 100
                        for name, job in daemon.jobs().items()), 20, interval=0.2),
            "the jobs did not resume")
        errors_after = daemon.metric("vapor_store_errors_total")
        time.sleep(0.5)
        self.assertEqual(daemon.metric("vapor_store_errors_total"), errors_after,
                         "commits still fail after the space came back")

        code, _ = daemon.stop()
        self.assertEqual(code, 0, daemon.log_tail())
        self.assertTrue(daemon.logged("database or disk is full"), daemon.log_tail())
        committed = daemon.db_steps()
        for name, row in committed.items():
            with self.subTest(job=name):
                self.assertTrue(gapless(row), f"{name}: jobs.step, count, min, max = {row}")
                self.assertGreater(row[0], paused[name]["step"])
        self.assertEqual(daemon.integrity_check(), "ok")


if __name__ == "__main__":
    harness.main()
