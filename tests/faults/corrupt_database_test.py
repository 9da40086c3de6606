"""vapord started on a real database of its own that was damaged afterwards: cut short (a copy
that stopped half way), a page overwritten in the middle, and cut short while a WAL from a
`kill -9` is still beside it. What a user notices: vapord refuses to start with a fatal error
naming the file, exits non-zero at once, never listens, and leaves the database (and its WAL)
byte for byte as it was, so that it can still be rescued.

(tests/app covers a file of random bytes, tests/store the store's refusals one by one; this is
the daemon on files it wrote itself.)"""

import hashlib
import os
import signal
import subprocess
import unittest

import faults_harness as harness
from faults_harness import Vapord, eventually, job_yaml, queue_yaml

PAGE = 4096
EMPTY = hashlib.sha256(b"").hexdigest()


def digest(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class CorruptDatabaseTest(unittest.TestCase):
    def run_until(self, daemon, steps):
        daemon.start()
        self.assertTrue(eventually(lambda: len(daemon.db_steps()) == 2 and
                                   all(row[0] >= steps for row in daemon.db_steps().values()),
                                   30, interval=0.2), daemon.log_tail())

    def make_database(self, killed=False):
        """A database vapord wrote: two jobs with a few thousand points, stopped cleanly (so
        it is all in vapor.db). `killed`: then restarted, and SIGKILLed a second later, so the
        newest commits are only in vapor.db-wal."""
        daemon = Vapord(harness.vapord_binary(),
                        queue_yaml([job_yaml("first", 100_000, "1ms"),
                                    job_yaml("second", 100_000, "1ms")]),
                        {"store": {"flush_interval": "50ms"}})
        self.addCleanup(daemon.close)
        self.run_until(daemon, 1500)
        code, _ = daemon.stop()
        self.assertEqual(code, 0, daemon.log_tail())
        self.assertFalse(os.path.exists(daemon.database + "-wal"))
        self.assertGreaterEqual(os.path.getsize(daemon.database), 16 * PAGE)
        if killed:
            self.run_until(daemon, 2500)
            daemon.signal(signal.SIGKILL)
            daemon.process.wait()
            self.assertGreater(os.path.getsize(daemon.database + "-wal"), 0)
        return daemon

    def assert_refused(self, daemon, says):
        database, wal = daemon.database, daemon.database + "-wal"
        before = (digest(database), digest(wal))
        started = subprocess.run([daemon.binary, "--config", daemon.config_path],
                                 capture_output=True, text=True, timeout=30)
        output = started.stdout + started.stderr
        self.assertNotEqual(started.returncode, 0, output)
        self.assertIn(database, output, "the error names the file")
        self.assertIn("not started", output)
        self.assertTrue(any(word in output for word in says), output)
        self.assertIn("left untouched", output)
        self.assertNotIn("listening on", output)
        self.assertEqual(digest(database), before[0], "the damaged database was modified")
        # SQLite may leave an empty WAL where there was none: it holds nothing.
        self.assertIn(digest(wal), (before[1], EMPTY if before[1] is None else before[1]),
                      "the WAL was modified")
        # A second attempt says the same: nothing was "repaired" in between.
        again = subprocess.run([daemon.binary, "--config", daemon.config_path],
                               capture_output=True, text=True, timeout=30)
        self.assertNotEqual(again.returncode, 0)
        self.assertEqual(digest(database), before[0])

    def test_truncated_database(self):
        daemon = self.make_database()
        with open(daemon.database, "r+b") as f:
            f.truncate(os.path.getsize(daemon.database) // 2 + 100)
        self.assert_refused(daemon, ["corrupt", "malformed"])

    def test_page_overwritten_in_the_middle(self):
        daemon = self.make_database()
        pages = os.path.getsize(daemon.database) // PAGE
        with open(daemon.database, "r+b") as f:
            f.seek(pages // 2 * PAGE)
            f.write(bytes((i * 131 + 7) % 256 for i in range(PAGE)))
        self.assert_refused(daemon, ["corrupt", "malformed"])

    def test_truncated_database_with_a_wal_left_by_kill_9(self):
        daemon = self.make_database(killed=True)
        with open(daemon.database, "r+b") as f:
            f.truncate(os.path.getsize(daemon.database) // 2 + 100)
        self.assert_refused(daemon, ["corrupt", "malformed"])


if __name__ == "__main__":
    harness.main()
