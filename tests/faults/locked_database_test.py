"""Another process holds the database's write lock (`BEGIN EXCLUSIVE`, 8 s) while jobs run.
What a user notices: vapord keeps answering, logs the failed commit, counts it in
`vapor_store_errors_total`, holds its memory bounded (jobs pause at store.max_pending_rows rather
than buffering without end), and once the lock goes every point is in the file, 1..jobs.step
for every job."""

import threading
import time
import unittest
from dataclasses import dataclass

import faults_harness as harness
from faults_harness import Vapord, eventually, gapless, job_yaml, queue_yaml

LOCK_SECONDS = 8.0
MIB_IN_KIB = 1024  # RSS is read in KiB


class ApiProber:
    """Asks for /healthz and /api/v1/jobs in a loop from a thread; remembers every answer's
    status and how long it took."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.answers = []  # (path, status or exception text, seconds)
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            for path in ("/healthz", "/api/v1/jobs"):
                started = time.monotonic()
                try:
                    status, _ = self.daemon.get(path, timeout=30)
                except Exception as error:
                    status = repr(error)
                self.answers.append((path, status, time.monotonic() - started))
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.thread.join(40)
        return self.answers


@dataclass
class LockedRun:
    """What a test saw around the lock."""
    daemon: Vapord
    asan: bool
    answers: list  # the ApiProber's
    rss_before: int  # KiB
    rss_peak: int  # KiB, while locked
    steps_mid_lock: dict  # name → step the API showed half way through the lock
    steps_at_release: dict  # name → step the API showed just before the release


class LockedDatabaseTest(unittest.TestCase):
    def run_with_lock(self, jobs, interval, settings):
        """Runs `jobs` jobs, holds the write lock for LOCK_SECONDS while probing the API, then
        releases it and checks that every step shown is committed without a gap."""
        daemon = Vapord(harness.vapord_binary(),
                        queue_yaml([job_yaml(f"job-{i:03d}", 1_000_000, interval)
                                    for i in range(jobs)]),
                        harness.merged({"scheduler": {"max_concurrent": jobs}}, settings))
        self.addCleanup(daemon.close)
        daemon.start()
        asan = harness.sanitized(daemon.pid)
        self.assertTrue(eventually(lambda: all(row[0] >= 50 for row in daemon.db_steps().values())
                                   and len(daemon.db_steps()) == jobs, 30, interval=0.2),
                        daemon.log_tail())
        self.assertEqual(daemon.metric("vapor_store_errors_total"), 0.0)
        rss_before = daemon.rss_kib()

        locker = daemon.connect_db(read_only=False, timeout=30)
        locker.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        committed_at_lock = daemon.db_steps()
        prober = ApiProber(daemon)
        rss_peak = rss_before
        steps_mid_lock = None
        while time.monotonic() - locked_at < LOCK_SECONDS:
            rss_peak = max(rss_peak, daemon.rss_kib())
            if steps_mid_lock is None and time.monotonic() - locked_at > LOCK_SECONDS / 2:
                steps_mid_lock = {name: job["step"] for name, job in daemon.jobs().items()}
            time.sleep(0.2)
        committed_while_locked = daemon.db_steps()  # readers are not blocked in WAL mode
        errors_while_locked = daemon.metric("vapor_store_errors_total")
        shown_at_release = daemon.jobs()  # still locked: all of this is only in memory
        locker.execute("COMMIT")
        locker.close()
        answers = prober.stop()

        # Once released, commits go through again and everything buffered lands.
        self.assertTrue(eventually(lambda: daemon.logged("commits succeed again"), 20),
                        daemon.log_tail())
        self.assertTrue(eventually(
            lambda: all(daemon.db_steps()[name][0] >= job["step"]
                        for name, job in shown_at_release.items()), 20, interval=0.2),
            "the steps taken while locked were not all committed after the release")
        code, _ = daemon.stop()
        self.assertEqual(code, 0, daemon.log_tail())

        self.assertTrue(daemon.logged("store: commit failed"), daemon.log_tail())
        self.assertTrue(daemon.logged("database is locked"), daemon.log_tail())
        self.assertGreater(errors_while_locked, 0, "vapor_store_errors_total did not count")
        self.assertEqual(committed_while_locked, committed_at_lock,
                         "nothing can commit while another connection holds the lock")
        committed = daemon.db_steps()
        for name, row in committed.items():
            with self.subTest(job=name):
                self.assertTrue(gapless(row), f"{name}: jobs.step, count, min, max = {row}")
                self.assertGreaterEqual(row[0], shown_at_release[name]["step"])
        self.assertEqual(daemon.integrity_check(), "ok")
        self.assertTrue(all(job["state"] == "running" for job in shown_at_release.values()))
        return LockedRun(daemon, asan, answers, rss_before, rss_peak, steps_mid_lock,
                         {name: job["step"] for name, job in shown_at_release.items()})

    def assert_answered(self, run, within):
        """Every request made while locked got a 200 within `within` seconds; memory stayed
        within a generous bound."""
        self.assertGreater(len(run.answers), 0)
        failures = [answer for answer in run.answers if answer[1] != 200]
        self.assertEqual(failures, [], "requests failed while the database was locked")
        slowest = max(seconds for _, _, seconds in run.answers)
        if run.asan:
            within *= 3  # a sanitizer slows every request several times over
        print(f"{len(run.answers)} answers while locked, slowest {slowest:.2f} s; "
              f"RSS {run.rss_before} -> peak {run.rss_peak} KiB")
        self.assertLess(slowest, within, f"slowest answer took {slowest:.2f} s")
        headroom = 128 * MIB_IN_KIB if run.asan else 32 * MIB_IN_KIB
        self.assertLess(run.rss_peak - run.rss_before, headroom,
                        f"RSS grew from {run.rss_before} to {run.rss_peak} KiB while locked")

    def test_short_busy_timeout_keeps_answering_pauses_jobs_and_loses_nothing(self):
        run = self.run_with_lock(
            jobs=100, interval="2ms",
            settings={"store": {"busy_timeout": "200ms", "max_pending_rows": 10000}})
        self.assert_answered(run, within=3.0)
        # 100 jobs at 2 ms make up to 50,000 rows a second: 10,000 buffered rows pause them
        # (within the first half of the lock), so the buffer, and memory, stop growing however
        # long the lock is held; the API shows the jobs standing still, still running.
        self.assertTrue(run.daemon.logged("pausing jobs until commits catch up"),
                        run.daemon.log_tail())
        self.assertTrue(run.daemon.logged("caught up; jobs resume"), run.daemon.log_tail())
        self.assertEqual(run.steps_at_release, run.steps_mid_lock,
                         "jobs kept stepping while paused")

    def test_default_busy_timeout_answers_within_it(self):
        # store.busy_timeout defaults to 250 ms: a commit waits for the lock on the event loop,
        # so while the lock is held answers wait at most that long (plus a loaded machine's
        # scheduling slack), instead of the seconds a long busy timeout would cost.
        run = self.run_with_lock(jobs=20, interval="5ms", settings={})
        self.assert_answered(run, within=0.25 + 2.0)


if __name__ == "__main__":
    harness.main()
