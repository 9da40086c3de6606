"""What Vapor's Python tests share (CTest puts this folder on PYTHONPATH): free loopback ports,
polling with a deadline, stopping a process this test started (by its Popen, never by name), a
peer daemon (Prometheus, Alertmanager) on a free port, and the real vapord on a temp folder.

Everything listens on 127.0.0.1 only."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def free_port():
    """A TCP port of 127.0.0.1 free right now (another process may still take it: callers that
    start a daemon on it retry, see ServiceProcess)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(predicate, timeout, interval=0.05):
    """Polls `predicate` until it holds or `timeout` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def wait_for(what, predicate, timeout=30.0, diagnostics=lambda: "", interval=0.2,
             tolerate=(OSError, ValueError, KeyError, IndexError)):
    """Polls `predicate` until it returns something truthy and returns it; an exception in
    `tolerate` counts as not yet. On timeout fails naming `what`, with `diagnostics()`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except tolerate:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{diagnostics()}")
        time.sleep(interval)


def stop_process(process, timeout=10.0):
    """SIGTERM to a process this test started, SIGKILL if it overstays `timeout`; returns
    (exit status, whether it had to be killed). Does nothing to one that already exited."""
    if process.poll() is not None:
        return process.returncode, False
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(), True


class ServiceProcess:
    """A peer daemon (Prometheus, Alertmanager) on a free port, logging to `folder/NAME.log`,
    started by `command_for_port(port)` and ready once `ready_path` answers 200. A port taken
    between free_port() and the bind makes it exit: it is tried on another port."""

    def __init__(self, name, folder, command_for_port, ready_path, timeout=30):
        self.name = name
        self.log_path = os.path.join(folder, name + ".log")
        for _ in range(3):
            self.port = free_port()
            self.log_file = open(self.log_path, "w")
            self.process = subprocess.Popen(command_for_port(self.port), stdout=self.log_file,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with urllib.request.urlopen(self.url(ready_path), timeout=2) as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
                time.sleep(0.1)
            self.stop()
            if "address already in use" not in self.log():
                break
        raise RuntimeError(f"{name} did not become ready:\n{self.log()}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        stop_process(self.process)
        self.log_file.close()


class Vapord:
    """The real vapord on a temp folder, listening on a free port of 127.0.0.1. A context
    manager: `with Vapord(binary, queue_yaml) as daemon:` starts it and waits for its
    'listening on' line; leaving stops it with SIGTERM and, unless the block failed, checks
    that it exited 0. Entering again after a stop restarts it on the same folder and database.
    `extra_config` is appended to vapord.yaml as YAML text."""

    def __init__(self, binary, queue_yaml, extra_config="", store_config="flush_interval: 100ms"):
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="vapor-test-")
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
        running = self.process.poll() is None
        code, killed = stop_process(self.process, timeout=5)
        if running and killed:
            raise AssertionError("vapord did not exit within 5 s of SIGTERM")
        if running and exc[0] is None:
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
