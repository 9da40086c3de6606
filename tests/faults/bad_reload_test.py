"""SIGHUP with a broken queue file: cut short mid-write, values of the wrong type, a file over
queue_max_bytes. What a user notices each time: the log says why and that nothing changed,
`vapor_config_last_reload_successful` drops to 0, the old queue stays in force (no job from the
broken file appears, none disappears), the running job keeps stepping and /readyz stays 200;
the next good reload sets the metric back to 1 and adds its job."""

import os
import signal
import unittest

import faults_harness as harness
from faults_harness import Vapord, eventually, job_yaml

RUNNING = job_yaml("long-runner", 1_000_000, "10ms")
GOOD_FILE = "jobs:\n" + RUNNING


def good_file_adding(name):
    return GOOD_FILE + f"  - name: {name}\n    epochs: 1\n    steps_per_epoch: 5\n"


def with_new_job(extra):
    """The good file plus a new job (that must not be added) and `extra`."""
    return GOOD_FILE + "  - name: must-not-appear\n    epochs: 1\n" + extra


# Most broken files keep the running job and add a valid new one, which a partial load would
# add; each comes with what the log must say about it (file:line:column: key path: expected).
BROKEN_FILES = {
    # An editor that died writing: cut inside a flow map, inside a quoted string, after a key.
    "truncated_in_a_flow_map": (with_new_job(
        "  - name: cut-short\n    epochs: 2\n    simulate: {initial_loss: 6.9, final_lo"),
        "jobs.yaml:10:1: invalid YAML"),
    "truncated_in_a_string": (with_new_job('  - name: "cut-sh'), "jobs.yaml:8:18: invalid YAML"),
    "truncated_after_a_key": (with_new_job("  - name: cut-short\n    epochs:"),
                              "jobs.yaml:9:5: jobs[2].epochs: expected a positive integer, "
                              "got null"),
    "wrong_type_epochs": (with_new_job('  - name: typed\n    epochs: "ten"\n'),
                          'jobs.yaml:9:13: jobs[2].epochs: expected a positive integer, '
                          'got the string "ten"'),
    "wrong_type_list_for_a_number": (
        with_new_job("  - name: typed\n    epochs: 1\n    steps_per_epoch: [1, 2]\n"),
        "jobs.yaml:10:22: jobs[2].steps_per_epoch: expected a positive integer, got a list"),
    "wrong_type_map_for_a_name": (with_new_job("  - name: {first: a}\n    epochs: 1\n"),
                                  "jobs.yaml:8:11: jobs[2].name: expected a string, got a map"),
    "duration_without_unit": (
        with_new_job("  - name: typed\n    epochs: 1\n    step_interval: 15\n"),
        "jobs.yaml:10:20: jobs[2].step_interval: expected a duration"),
    "jobs_not_a_list": ("jobs: {name: long-runner}\n",
                        "jobs.yaml:1:7: jobs: expected a list of jobs, got a map"),
    "binary_garbage": ("jobs:\n  - name: \x00\x01\x02\xff\xfe\n", "invalid UTF-8"),
    # Valid jobs, but past queue_max_bytes (the default, 1 MiB) because of a long comment.
    "over_queue_max_bytes": (with_new_job("# " + "x" * (1100 * 1024) + "\n"),
                             "over the limit of 1048576 bytes"),
}


class BadReloadTest(unittest.TestCase):
    def test_a_bad_reload_changes_nothing_and_a_good_one_recovers(self):
        daemon = Vapord(harness.vapord_binary(), GOOD_FILE,
                        {"scheduler": {"max_concurrent": 4}})
        self.addCleanup(daemon.close)
        daemon.start()
        self.assertTrue(eventually(lambda: daemon.jobs()["long-runner"]["step"] > 10, 20),
                        daemon.log_tail())
        self.assertEqual(daemon.metric("vapor_config_last_reload_successful"), 1.0)

        for number, (case, (text, says)) in enumerate(BROKEN_FILES.items()):
            with self.subTest(case=case):
                names_before = set(daemon.jobs())
                log_before = len(daemon.log())
                failed_before = daemon.log().count("not loaded (SIGHUP); nothing changed")
                with open(daemon.queue_path, "wb") as f:  # in place, as a careless editor would
                    f.write(text.encode("latin-1"))
                daemon.signal(signal.SIGHUP)
                self.assertTrue(eventually(
                    lambda: daemon.log().count("not loaded (SIGHUP); nothing changed")
                    > failed_before, 10), daemon.log_tail())
                # Located errors name the queue file by its full path.
                expected = (os.path.join(daemon.path, says) if says.startswith("jobs.yaml:")
                            else says)
                self.assertTrue(daemon.logged(expected, since=log_before),
                                f"{expected!r} not logged:\n{daemon.log_tail(8)}")
                self.assertEqual(daemon.metric("vapor_config_last_reload_successful"), 0.0)
                step = daemon.jobs()["long-runner"]["step"]
                self.assertTrue(eventually(
                    lambda: daemon.jobs()["long-runner"]["step"] >= step + 20, 10),
                    "the running job stopped stepping after a bad reload")
                jobs = daemon.jobs()
                self.assertEqual(set(jobs), names_before, "a bad reload changed the jobs")
                self.assertEqual(jobs["long-runner"]["state"], "running")
                self.assertEqual(daemon.get("/readyz")[0], 200)
                self.assertTrue(daemon.alive())

                # A good file brings the metric back and its new job in.
                added = f"added-after-{number}"
                loaded_before = daemon.log().count("loaded (SIGHUP): ")
                daemon.write_queue(good_file_adding(added))
                daemon.signal(signal.SIGHUP)
                self.assertTrue(eventually(
                    lambda: daemon.log().count("loaded (SIGHUP): ") > loaded_before, 10),
                    daemon.log_tail())
                self.assertEqual(daemon.metric("vapor_config_last_reload_successful"), 1.0)
                self.assertIn(added, daemon.jobs())

        code, _ = daemon.stop()
        self.assertEqual(code, 0, daemon.log_tail())


if __name__ == "__main__":
    harness.main()
