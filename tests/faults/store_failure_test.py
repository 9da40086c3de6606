"""The store's failure policy and retention, seen from outside vapord.

A permanent store error (here: another program wrote a job row under the id vapord hands out
next, so vapord's insert violates the primary key) must not be retried forever nor pause the
jobs: vapord says so in its log, `/readyz` (503), `vapor_store_failing` (1, which fires
VaporStoreFailing) and keeps running its jobs. Retention (`store.keep_points`) deletes the points
of jobs finished longer ago, and nothing else."""

import json
import os
import time
import unittest

import faults_harness as harness
from faults_harness import Vapord, eventually, job_yaml, queue_yaml


class PermanentStoreFailureTest(unittest.TestCase):
    def start_committing(self):
        """A vapord whose one job has committed 20 steps, ready."""
        daemon = Vapord(harness.vapord_binary(),
                        queue_yaml([job_yaml("long-run", 1_000_000, "20ms")]))
        self.addCleanup(daemon.close)
        daemon.start()
        self.assertTrue(eventually(lambda: daemon.db_steps().get("long-run", (0,))[0] >= 20, 20),
                        daemon.log_tail())
        self.assertEqual(daemon.get("/readyz")[0], 200)
        return daemon

    def test_a_constraint_violation_stops_commits_and_is_reported_not_retried(self):
        daemon = self.start_committing()
        self.assertEqual(daemon.metric("vapor_store_failing"), 0.0)

        # Another program takes the id vapord will give the next job.
        db = daemon.connect_db(read_only=False)
        try:
            next_id = db.execute("SELECT max(id) + 1 FROM jobs").fetchone()[0]
            db.execute("INSERT INTO jobs(id, name, spec_json, created_at) VALUES(?, ?, '{}', 0)",
                       (next_id, "foreign-row"))
        finally:
            db.close()
        status, body = daemon.request(
            "POST", "/api/v1/jobs",
            body=json.dumps({"name": "submitted", "epochs": 1, "steps_per_epoch": 10,
                             "step_interval": "10ms"}),
            headers={"Authorization": f"Bearer {daemon.token()}",
                     "Content-Type": "application/json"})
        self.assertEqual(status, 201, body)

        self.assertTrue(eventually(lambda: daemon.metric("vapor_store_failing") == 1.0, 10),
                        daemon.log_tail())
        self.assertTrue(daemon.logged("commits stopped for good"), daemon.log_tail())
        self.assertTrue(daemon.logged("UNIQUE constraint failed"), daemon.log_tail())
        status, body = daemon.get("/readyz")
        self.assertEqual(status, 503, body)
        self.assertEqual(daemon.get("/healthz")[0], 200, "alive, just not saving")

        # Not retried: one error, however many flush intervals (100 ms) pass; and the jobs are
        # not paused for the rows that can no longer be saved.
        errors = daemon.metric("vapor_store_errors_total")
        self.assertEqual(errors, 1.0)
        step_before = daemon.jobs()["long-run"]["step"]
        time.sleep(2.0)
        self.assertEqual(daemon.metric("vapor_store_errors_total"), errors)
        self.assertGreater(daemon.jobs()["long-run"]["step"], step_before + 20,
                           "the running job keeps stepping")
        self.assertEqual(daemon.jobs()["submitted"]["state"], "complete")

        # The history committed before the failure is intact.
        self.assertEqual(daemon.integrity_check(), "ok")
        committed = daemon.db_steps()["long-run"]
        self.assertGreater(committed[0], 0)
        self.assertEqual(committed[1], committed[0], "points 1..step, no gap")

        code, _ = daemon.stop()
        self.assertEqual(code, 1, "the last batch could not be saved: vapord says so")
        self.assertTrue(daemon.logged("the last batch could not be committed"), daemon.log_tail())

    def test_a_database_deleted_under_vapord_is_noticed_and_reported(self):
        daemon = self.start_committing()
        for suffix in ("", "-wal", "-shm"):  # what `rm vapor.db*` does
            path = daemon.database + suffix
            if os.path.exists(path):
                os.unlink(path)
        self.assertTrue(eventually(lambda: daemon.metric("vapor_store_failing") == 1.0, 10),
                        daemon.log_tail())
        self.assertTrue(daemon.logged("was deleted or replaced while vapord ran"),
                        daemon.log_tail())
        self.assertEqual(daemon.get("/readyz")[0], 503, "not ready: nothing is being kept")
        self.assertEqual(daemon.get("/healthz")[0], 200)
        code, _ = daemon.stop()
        self.assertEqual(code, 1, "the last batch could not be saved: vapord says so")


class RetentionTest(unittest.TestCase):
    def test_points_of_jobs_finished_longer_ago_are_deleted_and_nothing_else(self):
        daemon = Vapord(
            harness.vapord_binary(),
            queue_yaml([job_yaml("short", 40, "10ms"),
                        job_yaml("long-run", 1_000_000, "20ms")]),
            {"store": {"keep_points": "2s"}})
        self.addCleanup(daemon.close)
        daemon.start()
        self.assertTrue(eventually(lambda: daemon.jobs()["short"]["state"] == "complete", 20))
        self.assertTrue(eventually(lambda: daemon.db_steps()["short"][1] == 40, 10),
                        "all 40 points committed first")
        finished = time.monotonic()

        # Pruning runs every second for a 2 s retention: gone 2 to 4 s after the finish.
        self.assertTrue(eventually(lambda: daemon.db_steps()["short"][1] == 0, 15),
                        daemon.log_tail())
        self.assertGreaterEqual(time.monotonic() - finished, 1.5, "not before keep_points")
        self.assertEqual(daemon.metric("vapor_store_points_pruned_total"), 40.0)

        # The job, its summary and its events stay; the running job keeps every point.
        short = daemon.get_json("/api/v1/jobs/short")
        self.assertEqual((short["state"], short["step"]), ("complete", 40))
        events = daemon.get_json("/api/v1/jobs/short/events")["events"]
        self.assertEqual([event["to"] for event in events], ["running", "complete"])
        self.assertEqual(daemon.get_json("/api/v1/jobs/short/metrics")["points"], [])
        step, count, low, high = daemon.db_steps()["long-run"]
        self.assertEqual((count, low, high), (step, 1, step))
        self.assertEqual(daemon.integrity_check(), "ok")
        daemon.stop_cleanly_and_close()


if __name__ == "__main__":
    harness.main()
