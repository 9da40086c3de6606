"""Runs the real vapord for the fault and abuse tests: a temp folder (or a given one for the
database), a free port on 127.0.0.1, and what a user or an operator can observe from outside:
the HTTP API, /metrics, the log, the SQLite file, and the process's fd count and RSS in /proc.

Only the vapord started here is ever signalled, by its pid."""

import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from vapor_testing import LISTENING, eventually, stop_process  # noqa: F401 (eventually: re-exported)

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
SKIP_RETURN_CODE = 77  # tests/faults/CMakeLists.txt tells CTest that this status means skipped

_vapord_binary = None  # set by main() from the command line


def vapord_binary():
    return _vapord_binary


def to_yaml(settings, indent=0):
    """Nested dicts of scalars as YAML."""
    lines = []
    for key, value in settings.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(to_yaml(value, indent + 2))
        else:
            lines.append(" " * indent + f"{key}: {value}")
    return "\n".join(lines)


def merged(base, override):
    """`base` with `override`'s keys replacing its own, nested dicts merged key by key."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def job_yaml(name, steps, interval, extra=""):
    """One queue-file entry: a job of `steps` steps, one every `interval`."""
    return (f"  - name: {name}\n    epochs: 1\n    steps_per_epoch: {steps}\n"
            f"    step_interval: {interval}\n{extra}")


def queue_yaml(jobs):
    return "jobs:\n" + "".join(jobs) if jobs else "jobs: []\n"


class Vapord:
    """One vapord on a temp folder. `settings` overrides vapord.yaml keys (nested dicts);
    `database` puts the database elsewhere (a small file system, say)."""

    def __init__(self, binary, queue, settings=None, database=None):
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="vapor-faults-")
        self.path = self.dir.name
        self.database = database or os.path.join(self.path, "vapor.db")
        self.queue_path = os.path.join(self.path, "jobs.yaml")
        self.config_path = os.path.join(self.path, "vapord.yaml")
        self.write_queue(queue)
        config = merged({
            "listen": "127.0.0.1:0",
            "database": self.database,
            "queue": self.queue_path,
            "store": {"flush_interval": "100ms"},
            "api": {"token_file": os.path.join(self.path, "api-token")},
        }, settings or {})
        with open(os.path.join(self.path, "api-token"), "w") as f:
            f.write("faults-test-token-0123456789abcdef\n")
        os.chmod(os.path.join(self.path, "api-token"), 0o600)
        with open(self.config_path, "w") as f:
            f.write(to_yaml(config) + "\n")
        self.log_path = os.path.join(self.path, "vapord.log")
        self.process = None
        self.port = None
        self.log_file = None

    # --- life cycle -----------------------------------------------------------------------

    def start(self, timeout=30):
        """Starts vapord and waits for its 'listening on' line."""
        if self.log_file is not None:
            self.log_file.close()
        self.log_file = open(self.log_path, "a")
        earlier = len(LISTENING.findall(self.log()))
        self.process = subprocess.Popen(
            [self.binary, "--config", self.config_path],
            stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = LISTENING.findall(self.log())
            if len(matches) > earlier:
                self.port = int(matches[-1])
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("vapord did not start listening:\n" + self.log_tail())

    def stop(self, timeout=5.0):
        """SIGTERM; returns (exit status, seconds it took). Kills it if it overstays."""
        started = time.monotonic()
        code, killed = stop_process(self.process, timeout)
        if killed:
            raise AssertionError(f"vapord did not exit within {timeout} s of SIGTERM:\n"
                                 + self.log_tail())
        return code, time.monotonic() - started

    def stop_cleanly_and_close(self):
        """For a test class's tearDownClass: SIGTERM, then fail unless vapord exited 0 (a
        sanitizer report ends it otherwise); the folder goes either way."""
        try:
            code, _ = self.stop()
            if code != 0:
                raise AssertionError(f"vapord exited {code}:\n{self.log_tail()}")
        finally:
            self.close()

    def close(self):
        """Stops vapord if it still runs (SIGTERM, then SIGKILL) and removes the folder."""
        if self.process is not None:
            stop_process(self.process)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        self.dir.cleanup()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self):
        return self.process.pid

    def signal(self, number):
        self.process.send_signal(number)

    def write_queue(self, text):
        with open(self.queue_path + ".new", "w") as f:
            f.write(text)
        os.replace(self.queue_path + ".new", self.queue_path)

    # --- what an operator sees -------------------------------------------------------------

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_tail(self, lines=60):
        return "\n".join(self.log().splitlines()[-lines:])

    def logged(self, text, since=0):
        """True when the log (from byte `since`) holds `text`."""
        return text in self.log()[since:]

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    def token(self):
        with open(os.path.join(self.path, "api-token")) as f:
            return f.read().strip()

    # --- HTTP ------------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=20):
        """(status, body text); never raises on an HTTP error status."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            connection.close()

    def get(self, path, timeout=20):
        return self.request("GET", path, timeout=timeout)

    def get_json(self, path, timeout=20):
        status, body = self.get(path, timeout)
        assert status == 200, f"GET {path}: {status} {body}"
        return json.loads(body)

    def jobs(self):
        """name → JobSummary, from the API."""
        return {job["name"]: job for job in self.get_json("/api/v1/jobs")["jobs"]}

    def metrics(self):
        """'name{labels}' → value, from /metrics."""
        status, body = self.get("/metrics")
        assert status == 200, f"/metrics: {status}"
        samples = {}
        for line in body.splitlines():
            match = SAMPLE.match(line)
            if match:
                samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        return samples

    def metric(self, series, default=0.0):
        return self.metrics().get(series, default)

    # --- the database ----------------------------------------------------------------------

    def connect_db(self, read_only=True, timeout=10.0):
        uri = f"file:{self.database}" + ("?mode=ro" if read_only else "")
        return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)

    def db_steps(self):
        """name → (jobs.step, points count, min point step, max point step), as committed."""
        db = self.connect_db()
        try:
            rows = db.execute(
                "SELECT j.name, j.step, count(p.step), min(p.step), max(p.step)"
                " FROM jobs AS j LEFT JOIN points AS p ON p.job_id = j.id"
                " GROUP BY j.id").fetchall()
        finally:
            db.close()
        return {name: (step, count, low, high) for name, step, count, low, high in rows}

    def integrity_check(self):
        db = self.connect_db()
        try:
            return db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()


def gapless(steps_row):
    """True when a job's committed points are exactly 1..jobs.step."""
    step, count, low, high = steps_row
    if step == 0:
        return count == 0
    return count == step and low == 1 and high == step


def read_http_response(sock, timeout=10):
    """Reads one response (status line, headers, Content-Length body) off a raw socket;
    returns (status, headers dict, body bytes), or None if the peer closed first."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def sanitized(pid):
    """True when the process runs under AddressSanitizer or ThreadSanitizer (its RSS and speed
    differ: several times slower under TSan)."""
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps


def main():
    """Runs the calling file's unittest cases; the vapord binary is the first argument. Exits
    77 when every test skipped itself, so that CTest shows the test as skipped, not passed."""
    global _vapord_binary
    _vapord_binary = sys.argv.pop(1)
    program = unittest.main(module="__main__", exit=False, verbosity=2)
    result = program.result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        for _, reason in result.skipped:
            print(f"SKIPPED: {reason}", file=sys.stderr)
        sys.exit(SKIP_RETURN_CODE)
    sys.exit(0)
