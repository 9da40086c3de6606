"""SIGTERM while vapord writes as fast as it can: 200 jobs stepping every 1-2 ms, one commit a
second. What a user notices: vapord is gone within 5 s with status 0, every step the API or the
live feed showed is on disk, each job's points run 1..jobs.step without a gap, and the file passes
`PRAGMA integrity_check` with its WAL checkpointed away.

(STOPPING=1 to systemd is covered by tests/app/systemd_notify_test.cpp.)"""

import asyncio
import json
import os
import signal
import threading
import time
import unittest

import websockets

import faults_harness as harness
from faults_harness import Vapord, gapless, job_yaml, queue_yaml

JOBS = 200
WATCHED = [1, 3, 5]  # job ids a live feed client follows (2 ms jobs)


class FeedWatcher:
    """A live feed client in a thread: follows a few jobs and remembers the last step it was
    shown for each (from the `subscribed` ack on), until vapord closes the connection."""

    def __init__(self, url):
        self.url = url
        self.last_step = {}
        self.subscribed = threading.Event()
        self.close_code = None
        self.close_reason = None
        self.points = 0
        self.error = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)
        self.thread.start()

    async def run(self):
        try:
            async with websockets.connect(self.url, ping_interval=None,
                                          max_size=16 << 20) as ws:
                await ws.send(json.dumps({"type": "subscribe", "job_ids": WATCHED}))
                try:
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["type"] == "subscribed":
                            self.subscribed.set()
                        elif message["type"] == "point" and self.subscribed.is_set():
                            self.last_step[message["job_id"]] = message["step"]
                            self.points += 1
                except websockets.ConnectionClosed:
                    pass
                self.close_code = ws.close_code
                self.close_reason = ws.close_reason
        except Exception as error:  # reported by the test, not lost in the thread
            self.error = error
            self.subscribed.set()


class ShutdownUnderLoadTest(unittest.TestCase):
    def test_sigterm_commits_the_last_batch_and_exits_cleanly(self):
        daemon = Vapord(harness.vapord_binary(), queue_yaml([]), {
            "scheduler": {"max_concurrent": JOBS, "stall_timeout": "60s"},
            # One commit a second: when SIGTERM comes, up to a second of steps is only in memory.
            "store": {"flush_interval": "1s"},
        })
        self.addCleanup(daemon.close)
        daemon.start()
        watcher = FeedWatcher(f"ws://127.0.0.1:{daemon.port}/ws")
        self.assertTrue(watcher.subscribed.wait(20), "the feed client did not get subscribed")
        self.assertIsNone(watcher.error)
        # The jobs come once the client follows its few: it never sees the others' flood.
        daemon.write_queue(queue_yaml([
            job_yaml(f"load-{i:03d}", 1_000_000, "1ms" if i % 2 else "2ms") for i in range(JOBS)]))
        daemon.signal(signal.SIGHUP)

        # Full load: every job running and stepping, several commits done.
        self.assertTrue(harness.eventually(
            lambda: all(job["state"] == "running" and job["step"] >= 100
                        for job in daemon.jobs().values()), 30, interval=0.2),
            daemon.log_tail())
        time.sleep(2.5)

        committed_before = sum(row[0] for row in daemon.db_steps().values())
        shown = daemon.jobs()  # what a user saw last, part of it not committed yet
        self.assertGreater(sum(job["step"] for job in shown.values()), committed_before,
                           "the API should be ahead of the last commit (steps held in memory)")
        code, took = daemon.stop(timeout=5.0)
        self.assertEqual(code, 0, daemon.log_tail())
        self.assertLess(took, 5.0)
        watcher.thread.join(10)
        self.assertFalse(watcher.thread.is_alive(), "the feed connection outlived vapord")
        self.assertIsNone(watcher.error)

        committed = daemon.db_steps()
        self.assertEqual(len(committed), JOBS)
        for name, job in shown.items():
            with self.subTest(job=name):
                self.assertTrue(gapless(committed[name]),
                                f"{name}: jobs.step, count, min, max = {committed[name]}")
                self.assertGreaterEqual(committed[name][0], job["step"],
                                        f"{name}: the API showed step {job['step']}")
        by_id = {job["id"]: job["name"] for job in shown.values()}
        # The live client was told that vapord is going away, after points of every job.
        feed = (f"feed closed with {watcher.close_code} {watcher.close_reason!r} after "
                f"{watcher.points} points, last steps {watcher.last_step}")
        self.assertEqual(watcher.close_code, 1001, feed)
        self.assertEqual(sorted(watcher.last_step), WATCHED, feed)
        for job_id, step in watcher.last_step.items():
            self.assertGreaterEqual(committed[by_id[job_id]][0], step,
                                    f"job {job_id}: the live feed showed step {step}")

        self.assertTrue(daemon.logged("last batch committed"), daemon.log_tail())
        self.assertEqual(daemon.integrity_check(), "ok")
        wal = daemon.database + "-wal"
        self.assertFalse(os.path.exists(wal) and os.path.getsize(wal) > 0,
                         "the WAL was not checkpointed into the database at exit")


if __name__ == "__main__":
    harness.main()
