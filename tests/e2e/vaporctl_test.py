"""vaporctl against a real vapord: every subcommand, JSON output, exit codes, and `watch` both in
a pseudo-terminal (the bars redraw in place) and piped (plain lines)."""

import json
import os
import pty
import select
import subprocess
import sys
import time
import unittest

from vapor_testing import Vapord

VAPORD = sys.argv.pop(1)
VAPORCTL = sys.argv.pop(1)

QUEUE = """jobs:
  - name: fast
    epochs: 2
    steps_per_epoch: 40
    step_interval: 10ms
  - name: waits
    epochs: 1
    steps_per_epoch: 30
    step_interval: 20ms
    start: manual
  - name: doomed
    epochs: 1
    steps_per_epoch: 50
    step_interval: 20ms
    start: manual
    faults: {fail_at_step: 25}
"""


class VaporctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Vapord(VAPORD, QUEUE).__enter__()
        cls.env = dict(os.environ, VAPOR_URL=f"http://127.0.0.1:{cls.daemon.port}",
                       VAPOR_TOKEN_FILE=os.path.join(cls.daemon.path, "api-token"))

    @classmethod
    def tearDownClass(cls):
        cls.daemon.__exit__(None, None, None)

    def run_ctl(self, *args, env=None):
        result = subprocess.run([VAPORCTL, *args], capture_output=True, text=True, timeout=60,
                                env=env or self.env)
        return result.returncode, result.stdout, result.stderr

    def test_1_read_commands_in_table_and_json(self):
        code, out, _ = self.run_ctl("jobs")
        self.assertEqual(code, 0)
        self.assertIn("NAME", out.splitlines()[0])
        for name in ("fast", "waits", "doomed"):
            self.assertIn(name, out)
        code, out, _ = self.run_ctl("--output", "json", "jobs")
        self.assertEqual(code, 0)
        jobs = json.loads(out)["jobs"]
        self.assertEqual(sorted(j["name"] for j in jobs), ["doomed", "fast", "waits"])
        code, out, _ = self.run_ctl("show", "waits")
        self.assertEqual(code, 0)
        self.assertIn("queued", out)
        self.assertIn("spec:", out)
        code, out, _ = self.run_ctl("-o", "json", "show", "waits")
        self.assertEqual(json.loads(out)["spec"]["start"], "manual")
        code, _, err = self.run_ctl("show", "missing")
        self.assertEqual(code, 4, "no such job")
        self.assertIn("404", err)

    def test_2_start_stop_submit_and_their_exit_codes(self):
        code, _, err = self.run_ctl("start", "waits",
                                    env=dict(self.env, VAPOR_TOKEN_FILE="/nonexistent"))
        self.assertEqual(code, 6, "no token: unauthorized")
        code, out, _ = self.run_ctl("start", "waits")
        self.assertEqual(code, 0)
        self.assertIn("waits", out)
        code, _, _ = self.run_ctl("stop", "waits")
        self.assertEqual(code, 0)
        code, _, _ = self.run_ctl("stop", "waits")
        self.assertEqual(code, 5, "already stopped: conflict")
        code, out, _ = self.run_ctl("events", "waits")
        self.assertEqual(code, 0)
        self.assertIn("stopped", out)

        spec = os.path.join(self.daemon.path, "spec.yaml")
        with open(spec, "w") as f:
            f.write("name: submitted\nepochs: 1\nsteps_per_epoch: 10\nstep_interval: 10ms\n")
        code, out, _ = self.run_ctl("submit", spec)
        self.assertEqual(code, 0)
        self.assertIn("/api/v1/jobs/", out)
        code, _, _ = self.run_ctl("submit", spec)
        self.assertEqual(code, 5, "name taken")
        with open(spec, "w") as f:
            f.write("name: broken\nepochs: ten\n")
        code, _, err = self.run_ctl("submit", spec)
        self.assertEqual(code, 2)
        self.assertIn("spec.yaml:2:9: epochs: expected a positive integer", err)
        code, _, _ = self.run_ctl("frobnicate")
        self.assertEqual(code, 2)
        code, _, _ = self.run_ctl("jobs", env=dict(self.env, VAPOR_URL="http://127.0.0.1:1"))
        self.assertEqual(code, 3, "unreachable")

    def test_3_watch_piped_prints_plain_lines_and_fails_with_the_job(self):
        watcher = subprocess.Popen([VAPORCTL, "watch", "doomed"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=self.env)
        time.sleep(0.5)
        self.assertEqual(self.run_ctl("start", "doomed")[0], 0)
        out, err = watcher.communicate(timeout=60)
        self.assertEqual(watcher.returncode, 1, "a watched job failed: " + err)
        self.assertNotIn("\x1b[", out, "no terminal codes in a pipe")
        self.assertIn("doomed: queued -> running", out)
        self.assertIn("doomed: running -> failed reason crashed", out)
        self.assertIn("1 job: 1 failed", out)

    def test_4_watch_in_a_terminal_redraws_bars(self):
        spec = os.path.join(self.daemon.path, "tty.yaml")
        with open(spec, "w") as f:
            f.write("name: tty-job\nepochs: 2\nsteps_per_epoch: 30\nstep_interval: 20ms\n"
                    "start: manual\n")
        self.assertEqual(self.run_ctl("submit", spec)[0], 0)
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(VAPORCTL, [VAPORCTL, "watch", "tty-job"], self.env)
        time.sleep(0.5)
        self.assertEqual(self.run_ctl("start", "tty-job")[0], 0)
        output = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        text = output.decode(errors="replace")
        self.assertGreater(text.count("\x1b[1A"), 3, "the bar is redrawn in place")
        self.assertIn("█", text)
        self.assertIn("tty-job", text)
        self.assertIn("1 job: 1 complete", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
