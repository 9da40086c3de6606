"""vapord.service under a real systemd: Debian's systemd booted as PID 1 of private namespaces
(boot.sh) on a throw-away root holding `cmake --install` of this build, driven with systemctl as
an administrator would drive it.

usage: real_systemd_test.py BUILD_DIR TOY_TRAINER

It never touches the host: the boot runs in its own PID, mount, UTS, IPC, network and cgroup
namespaces (every mount private, every write on a tmpfs, the build folder's install manifest
included), in a cgroup of its own made for it and removed after it; the host's / is only the
read-only lower layer of an overlay, and no core file can leave it (LimitCORE=0). The one process
it signals from outside is the namespace's PID 1, which it started. Exits 77 (skipped) where
that cannot be done: not root, no unshare, no cgroup2 hierarchy, no overlayfs.

Checked, in order, on one boot:
- `systemctl start` returns only after READY=1: /readyz answers at once; STATUS= text shows.
- DynamicUser: a throw-away user owns /var/lib/vapor (private/vapor, 0700) and the database.
- `systemctl reload` of a good queue returns with the job added; of a broken one leaves vapord
  serving its jobs, with the failure in /metrics.
- The watchdog: a vapord stopped with SIGSTOP is killed and restarted, and resumes its jobs.
- `systemctl stop` is clean (Result=success) and leaves a database that passes integrity_check.
- A vapord.yaml that does not load (exit 2) is not restarted again and again.
- Under the runner drop-in (a real user), `systemctl stop` ends a command job's trainer through
  vapord: the trainer gets SIGTERM, saves and leaves; none is left behind.
"""

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SKIP = 77
PR_SET_PDEATHSIG = 1
CGROUP_PREFIX = "vapor-systemd-test-"
UNIFIED_CANDIDATES = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 9786  # the packaged vapord.yaml's; the boot has a network namespace of its own
WATCHDOG_SECONDS = 4  # the test's drop-in shortens the unit's 30 s

BUILD_DIR = None
TOY_TRAINER = None


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def cgroup2_root():
    """Where the host mounts its cgroup2 hierarchy (hybrid hosts: /sys/fs/cgroup/unified)."""
    for path in UNIFIED_CANDIDATES:
        if os.path.exists(os.path.join(path, "cgroup.procs")) and \
                os.path.exists(os.path.join(path, "cgroup.max.depth")):
            return path
    return None


def check_can_run():
    if os.geteuid() != 0:
        skip("needs root (namespaces, mounts and a cgroup of its own)")
    for tool in ("unshare", "nsenter", "setpriv", "pivot_root"):
        if shutil.which(tool) is None:
            skip(f"{tool} is not installed")
    if not os.path.exists("/lib/systemd/systemd"):
        skip("systemd is not installed")
    if cgroup2_root() is None:
        skip("no cgroup2 hierarchy")
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            skip("no overlayfs")
    probe = subprocess.run(["unshare", "--fork", "--pid", "--mount", "--net", "--cgroup",
                            "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        skip(f"cannot make namespaces here: {probe.stderr.strip()}")


def stage_tree(stage):
    """What the test adds over the installed image: a boot target with nothing but vapord's
    needs, the watchdog drop-in, and the toy trainer."""
    def write(path, text):
        full = os.path.join(stage, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    write("etc/systemd/system/vapor-test.target",
          "[Unit]\nDescription=Vapor real-systemd test boot\nRequires=basic.target\n"
          "After=basic.target\nAllowIsolate=yes\n")
    # Only the timings change: the unit's hardening, notify type and restart policy stay. No
    # core file from the watchdog's SIGABRT: the kernel's core_pattern is the host's (it may
    # pipe cores to a helper that runs outside these namespaces).
    write("etc/systemd/system/vapord.service.d/50-test-timings.conf",
          f"[Service]\nWatchdogSec={WATCHDOG_SECONDS}s\nRestartSec=1s\nLimitCORE=0\n")
    write("etc/hostname", "vapor-systemd-test\n")
    os.makedirs(os.path.join(stage, "opt/vapor-test"))
    shutil.copy(TOY_TRAINER, os.path.join(stage, "opt/vapor-test/toy_trainer.py"))


class Boot:
    """systemd as PID 1 of new namespaces, in a cgroup made for it."""

    def __init__(self, build_dir):
        # The stage and the console log on a tmpfs too, where the host has one for it.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.scratch = tempfile.mkdtemp(prefix="vapor-systemd-test-", dir=shm)
        self.cgroup = os.path.join(cgroup2_root(), f"{CGROUP_PREFIX}{os.getpid()}")
        self.unshare = None
        self.pid = None
        self.pidfd = None
        self.console = open(os.path.join(self.scratch, "console.log"), "w+")
        try:
            self._boot(build_dir)
        except BaseException:
            self.close()
            raise

    def _boot(self, build_dir):
        stage = os.path.join(self.scratch, "stage")
        os.makedirs(stage)
        stage_tree(stage)
        remove_stale_cgroups()
        os.mkdir(self.cgroup)
        cgroup_procs = os.path.join(self.cgroup, "cgroup.procs")

        def enter_cgroup():
            with open(cgroup_procs, "w") as f:
                f.write(str(os.getpid()))
            # If this test dies, unshare dies with it, and the boot with unshare (--kill-child).
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

        self.unshare = subprocess.Popen(
            ["unshare", "--fork", "--kill-child", "--pid", "--mount", "--uts", "--ipc", "--net",
             "--cgroup", "--propagation", "private", "bash", os.path.join(HERE, "boot.sh"), build_dir, stage],
            stdout=self.console, stderr=subprocess.STDOUT, preexec_fn=enter_cgroup)
        self.pid = self._init_pid()

    def _init_pid(self):
        """The host pid of the namespace's PID 1 (unshare's one child), and a pidfd of it so
        that it is the one signalled even if its pid were reused after it ended."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.unshare.poll() is not None:
                raise AssertionError("the boot ended at once:\n" + self.console_text())
            path = f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children"
            with open(path) as f:
                children = f.read().split()
            if children:
                self.pidfd = os.pidfd_open(int(children[0]))
                return int(children[0])
            time.sleep(0.05)
        raise AssertionError("unshare started no child")

    def console_text(self):
        self.console.flush()
        with open(self.console.name) as f:
            return f.read()

    def run(self, *command, check=True, timeout=60, input=None):
        """A command inside the boot (its root and namespaces; the process stays in this test's
        own cgroup on the host)."""
        result = subprocess.run(
            ["nsenter", "--target", str(self.pid), "--mount", "--uts", "--ipc", "--net",
             "--pid", "--cgroup", "--root", "--wd", "--", *command],
            capture_output=True, text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def write(self, path, text):
        self.run("sh", "-c", 'cat > "$1"', "sh", path, input=text)

    def show(self, unit, *properties):
        out = self.run("systemctl", "show", unit, "--property=" + ",".join(properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def http(self, path, method="GET", token=None):
        """(status, body) of a request to vapord inside the boot's network namespace."""
        script = (
            "import sys, urllib.request, urllib.error\n"
            "request = urllib.request.Request(sys.argv[1], method=sys.argv[2])\n"
            "if sys.argv[3]: request.add_header('Authorization', 'Bearer ' + sys.argv[3])\n"
            "try:\n"
            "    with urllib.request.urlopen(request, timeout=5) as answer:\n"
            "        print(answer.status); sys.stdout.write(answer.read().decode())\n"
            "except urllib.error.HTTPError as error:\n"
            "    print(error.code); sys.stdout.write(error.read().decode())\n"
            "except OSError as error:\n"
            "    print(0); sys.stdout.write(str(error))\n")
        out = self.run("python3", "-c", script, f"http://127.0.0.1:{PORT}{path}", method,
                       token or "").stdout
        status, _, body = out.partition("\n")
        return int(status), body

    def journal(self, unit):
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout

    def close(self):
        if self.unshare is not None and self.unshare.poll() is None:
            if self.pid is not None:
                # systemd in a container leaves on poweroff by ending the namespace.
                self.run("systemctl", "poweroff", "--no-block", check=False, timeout=10)
            try:
                self.unshare.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if self.pidfd is not None:  # the namespace's PID 1: all in it go with it
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                self.unshare.kill()  # --kill-child: its child goes with it
                self.unshare.wait(timeout=30)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if os.path.isdir(self.cgroup):
            remove_cgroup(self.cgroup)
        self.console.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def remove_stale_cgroups():
    """The cgroups of earlier runs that were killed before they could remove them (their test
    process is gone): removed where empty."""
    root = cgroup2_root()
    for name in os.listdir(root):
        if not name.startswith(CGROUP_PREFIX):
            continue
        owner = name[len(CGROUP_PREFIX):]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            try:
                remove_cgroup(os.path.join(root, name), timeout=1)
            except AssertionError:
                pass  # still holds processes: not ours to end


def remove_cgroup(path, timeout=10):
    """The test's cgroup and what systemd made under it, deepest first, once they are empty."""
    deadline = time.monotonic() + timeout
    while os.path.isdir(path):
        for folder, _, _ in sorted(os.walk(path), key=lambda entry: -entry[0].count("/")):
            try:
                os.rmdir(folder)
            except OSError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"cgroup {path} is not empty after the boot ended")
        time.sleep(0.1)


def wait_until(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


class RealSystemdTest(unittest.TestCase):
    boot = None

    @classmethod
    def setUpClass(cls):
        cls.boot = Boot(BUILD_DIR)
        cls.addClassCleanup(cls.boot.close)  # also when the rest of setUpClass fails
        state = wait_until(
            "the boot to finish",
            lambda: cls.boot.run("systemctl", "is-system-running", check=False).stdout.strip()
            in ("running", "degraded") and cls.boot.run("systemctl", "is-system-running",
                                                        check=False).stdout.strip(),
            timeout=90)
        if state == "degraded":
            failed = cls.boot.run("systemctl", "--failed", "--no-legend", check=False).stdout
            print(f"boot is degraded (units of the host that fail in a container):\n{failed}")

    def token(self):
        return self.boot.run("cat", "/var/lib/vapor/api-token").stdout.strip()

    def jobs(self):
        status, body = self.boot.http("/api/v1/jobs", token=self.token())
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        return answer["jobs"] if isinstance(answer, dict) else answer

    def metric(self, name):
        status, body = self.boot.http("/metrics")
        self.assertEqual(status, 200)
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{}"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def integrity(self, database):
        return self.boot.run(
            "python3", "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
            "'PRAGMA integrity_check').fetchone()[0])", database).stdout.strip()

    def diagnostics(self):
        return (self.boot.run("systemctl", "status", "--no-pager", "vapord", check=False).stdout
                + self.boot.journal("vapord")[-4000:])

    # -- the default, hardened unit ------------------------------------------------------------

    def test_1_start_returns_once_ready_and_shows_status(self):
        self.boot.run("systemctl", "start", "vapord")
        status, body = self.boot.http("/readyz")  # at once: READY=1 comes after the bind
        self.assertEqual(status, 200, body + self.diagnostics())
        unit = self.boot.show("vapord", "ActiveState", "SubState", "Type", "StatusText")
        self.assertEqual((unit["ActiveState"], unit["SubState"], unit["Type"]),
                         ("active", "running", "notify"))
        wait_until("a STATUS= text counting the jobs", lambda: re.fullmatch(
            r"\d+ running, \d+ queued, \d+ done \(\d+ failed\)",
            self.boot.show("vapord", "StatusText")["StatusText"]), 10)
        self.assertIn("Status:", self.boot.run("systemctl", "status", "--no-pager", "vapord",
                                               check=False).stdout)

    def test_2_dynamic_user_owns_the_state_directory(self):
        main_pid = self.boot.show("vapord", "MainPID")["MainPID"]
        uid = self.boot.run("stat", "-c", "%u", f"/proc/{main_pid}").stdout.strip()
        self.assertNotEqual(uid, "0", "vapord runs as a throw-away user, not root")
        owner = self.boot.run("stat", "-c", "%u %U %a", "/var/lib/private/vapor").stdout.split()
        self.assertEqual(owner, [uid, "vapord", "700"])
        self.assertEqual(self.boot.run("readlink", "/var/lib/vapor").stdout.strip(),
                         "private/vapor")
        database = self.boot.run("stat", "-c", "%u %a", "/var/lib/vapor/vapor.db").stdout.split()
        self.assertEqual(database, [uid, "600"])

    def test_3_reload_good_and_bad_queue(self):
        queue = self.boot.run("cat", "/etc/vapor/jobs.yaml").stdout
        added = queue.rstrip("\n") + (
            "\n\n  - name: added-by-reload\n    model: mlp\n    epochs: 1\n"
            "    steps_per_epoch: 50\n    step_interval: 100ms\n")
        self.boot.write("/etc/vapor/jobs.yaml", added)
        self.boot.run("systemctl", "reload", "vapord")
        # reload returns after RELOADING=1 ... READY=1, so the job is there at once.
        self.assertIn("added-by-reload", [job["name"] for job in self.jobs()])
        self.assertEqual(self.metric("vapor_config_last_reload_successful"), 1.0)

        self.boot.write("/etc/vapor/jobs.yaml", "jobs: [ {name: broken\n")
        self.boot.run("systemctl", "reload", "vapord")
        self.assertEqual(self.metric("vapor_config_last_reload_successful"), 0.0)
        self.assertEqual(self.boot.show("vapord", "ActiveState")["ActiveState"], "active")
        self.assertIn("added-by-reload", [job["name"] for job in self.jobs()])
        self.boot.write("/etc/vapor/jobs.yaml", added)
        self.boot.run("systemctl", "reload", "vapord")
        self.assertEqual(self.metric("vapor_config_last_reload_successful"), 1.0)

    def test_4_watchdog_restarts_a_stuck_vapord_and_jobs_resume(self):
        running = wait_until("a running job with steps", lambda: [
            job for job in self.jobs() if job["state"] == "running" and job.get("step", 0) > 0],
            timeout=30)
        job_id, step_before = running[0]["id"], running[0]["step"]
        before = self.boot.show("vapord", "MainPID", "NRestarts")
        # Alive past a whole watchdog period: vapord pets the watchdog from its loop.
        time.sleep(WATCHDOG_SECONDS + 1)
        self.assertEqual(self.boot.show("vapord", "MainPID"), {"MainPID": before["MainPID"]})

        self.boot.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", "vapord")
        wait_until("systemd to kill and restart the stopped vapord", lambda: (
            (unit := self.boot.show("vapord", "MainPID", "NRestarts", "ActiveState"))
            and unit["ActiveState"] == "active" and unit["MainPID"] not in ("0", before["MainPID"])
            and int(unit["NRestarts"]) == int(before["NRestarts"]) + 1),
            timeout=WATCHDOG_SECONDS * 3 + 15)
        self.assertIn("Watchdog timeout", self.boot.journal("vapord"))
        wait_until("/readyz after the restart", lambda: self.boot.http("/readyz")[0] == 200, 20)
        wait_until("the job to step on past where it was", lambda: [
            job for job in self.jobs()
            if job["id"] == job_id and job["state"] in ("running", "complete")
            and job["step"] > step_before],
            timeout=30)

    def test_5_stop_is_clean_and_the_database_sound(self):
        self.boot.run("systemctl", "stop", "vapord")
        unit = self.boot.show("vapord", "ActiveState", "Result", "ExecMainStatus")
        self.assertEqual(unit, {"ActiveState": "inactive", "Result": "success",
                                "ExecMainStatus": "0"}, self.diagnostics())
        self.assertEqual(self.integrity("/var/lib/private/vapor/vapor.db"), "ok")

    def test_6_a_bad_config_is_not_restarted_forever(self):
        good = self.boot.run("cat", "/etc/vapor/vapord.yaml").stdout
        self.boot.write("/etc/vapor/vapord.yaml", good + "\nnot_a_setting: 1\n")
        try:
            started = self.boot.run("systemctl", "start", "vapord", check=False)
            self.assertNotEqual(started.returncode, 0)
            time.sleep(4)  # two RestartSec periods of the test's drop-in, four of them here
            unit = self.boot.show("vapord", "ActiveState", "NRestarts", "ExecMainStatus")
            self.assertEqual(unit, {"ActiveState": "failed", "NRestarts": "0",
                                    "ExecMainStatus": "2"}, self.diagnostics())
            self.assertIn("not_a_setting", self.boot.journal("vapord"))
        finally:
            self.boot.write("/etc/vapor/vapord.yaml", good)
            self.boot.run("systemctl", "reset-failed", "vapord", check=False)

    # -- the runner drop-in: a real user and command jobs ----------------------------------------

    def test_7_runner_drop_in_stops_a_trainer_gracefully(self):
        self.boot.run("adduser", "--system", "--group", "--home", "/home/vapor", "vapor")
        self.boot.run("cp", "/usr/share/vapor/systemd/runner.conf",
                      "/etc/systemd/system/vapord.service.d/runner.conf")
        self.boot.write("/etc/vapor/jobs.yaml", (
            "jobs:\n  - name: real-trainer\n    kind: command\n"
            "    command: [python3, /opt/vapor-test/toy_trainer.py, '100000', --end, trap-term,"
            " --interval, '0.05']\n    epochs: 1\n    steps_per_epoch: 100000\n"
            "    stop_grace: 20s\n"))
        self.boot.run("systemctl", "daemon-reload")
        self.boot.run("systemctl", "start", "vapord")
        self.assertEqual(self.boot.run("stat", "-c", "%U", "/var/lib/vapor").stdout.strip(),
                         "vapor", "the state directory moved to the real user")
        wait_until("the trainer to report steps", lambda: [
            job for job in self.jobs() if job["name"] == "real-trainer" and job.get("step", 0) > 0],
            timeout=30)
        trainer = self.boot.run("pgrep", "-f", "toy_trainer.py").stdout.split()
        self.assertEqual(len(trainer), 1)
        self.assertEqual(self.boot.run("ps", "-o", "user=", "-p", trainer[0]).stdout.strip(),
                         "vapor")

        began = time.monotonic()
        self.boot.run("systemctl", "stop", "vapord", timeout=150)
        self.assertLess(time.monotonic() - began, 20, "the trainer left on SIGTERM, not SIGKILL")
        unit = self.boot.show("vapord", "ActiveState", "Result")
        self.assertEqual(unit, {"ActiveState": "inactive", "Result": "success"},
                         self.diagnostics())
        self.assertEqual(self.boot.run("pgrep", "-f", "toy_trainer.py", check=False).stdout, "",
                         "no trainer outlives vapord")
        log = self.boot.run("sh", "-c", "cat /var/lib/vapor/logs/* /var/lib/vapor/*.log "
                            "2>/dev/null", check=False).stdout
        self.assertIn("SIGTERM: saving and leaving", log)
        self.assertEqual(self.integrity("/var/lib/vapor/vapor.db"), "ok")


def main():
    global BUILD_DIR, TOY_TRAINER
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    BUILD_DIR, TOY_TRAINER = sys.argv[1], sys.argv[2]
    check_can_run()
    result = unittest.main(argv=sys.argv[:1], exit=False, verbosity=2).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
