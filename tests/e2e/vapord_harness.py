"""Runs the real vapord on a temp folder with a free port on 127.0.0.1, for end-to-end tests."""

import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class Vapord:
    def __init__(self, binary, queue_yaml, extra_config="", store_config="flush_interval: 100ms"):
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="vapor-e2e-")
        self.path = self.dir.name
        with open(os.path.join(self.path, "jobs.yaml"), "w") as f:
            f.write(queue_yaml)
        with open(os.path.join(self.path, "vapord.yaml"), "w") as f:
            f.write(
                "listen: 127.0.0.1:0\n"
                f"database: {self.path}/vapor.db\n"
                f"queue: {self.path}/jobs.yaml\n"
                f"store: {{{store_config}}}\n" + extra_config
            )
        self.log_path = os.path.join(self.path, "vapord.log")
        self.process = None
        self.port = None
        self.log_file = None

    def __enter__(self):
        """Starts vapord (again, after a stop: the folder and its database are kept)."""
        if self.log_file is not None:
            self.log_file.close()
        self.log_file = open(self.log_path, "a")
        earlier_starts = len(LISTENING.findall(self.log()))
        self.process = subprocess.Popen(
            [self.binary, "--config", os.path.join(self.path, "vapord.yaml")],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            matches = LISTENING.findall(self.log())
            match = matches[-1] if len(matches) > earlier_starts else None
            if match:
                self.port = int(match)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("vapord did not start listening:\n" + self.log())

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("vapord did not exit within 5 s of SIGTERM")
            if exc[0] is None:
                assert code == 0, f"vapord exited {code}:\n{self.log()}"
        self.log_file.close()
        self.dir.cleanup()

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as response:
            return response.status, response.read().decode()

    def token(self):
        with open(os.path.join(self.path, "api-token")) as f:
            return f.read().strip()
