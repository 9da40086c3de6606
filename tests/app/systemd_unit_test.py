"""Checks systemd/vapord.service, and it with the drop-in for hosts that run real trainers, with
systemd's own tools, as an administrator would.

usage: systemd_unit_test.py UNIT_FILE RUNNER_DROP_IN VAPORD_BINARY

- `systemd-analyze verify` accepts the unit without a single complaint about it (an unknown or
  misspelt key is only a warning there, so any line naming the unit fails this test). verify also
  checks that ExecStart= exists, so it runs on a copy whose ExecStart= is the binary just built.
  The drop-in is verified the same way, placed in vapord.service.d/ beside that copy.
- `systemd-analyze security --offline=true` rates the unit's exposure 1.1 or lower, and with the
  drop-in 2.5 or lower.
- The unit keeps the contract vapord's notify code was written for; the drop-in changes exactly
  the settings README.md explains (a new relaxation must be added there and here), ends trainers
  through vapord (KillMode=mixed) and waits longer than a trainer's default stop_grace.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

INSTALLED_BINARY = "/usr/bin/vapord"
MAX_EXPOSURE = 1.1
MAX_RUNNER_EXPOSURE = 2.5
# What the runner drop-in may change, each explained in README.md.
RUNNER_KEYS = {
    "DynamicUser", "User", "Group", "ProtectSystem", "ProtectHome", "PrivateDevices",
    "DevicePolicy", "DeviceAllow", "MemoryDenyWriteExecute", "SystemCallFilter", "RemoveIPC",
    "ProtectProc", "ProcSubset", "PrivateUsers", "IPAddressDeny", "IPAddressAllow",
    "RestrictAddressFamilies", "LimitMEMLOCK", "KillMode", "TimeoutStopSec",
}
# A command job's default stop_grace (lib/core/job_spec.hpp) plus the last commit.
DEFAULT_STOP_GRACE_SECONDS = 10
LAST_COMMIT_SECONDS = 10


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def systemd_analyze(*args):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        fail("systemd-analyze not found (Debian package: systemd)")
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def settings(unit_text):
    """key -> list of values, in file order ([Service] and friends merged; fine for this file)."""
    found = {}
    for line in unit_text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def check_contract(unit_text):
    found = settings(unit_text)
    expected = {
        "Type": "notify",
        "ExecStart": INSTALLED_BINARY + " --config /etc/vapor/vapord.yaml",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "StateDirectory": "vapor",
        "ConfigurationDirectory": "vapor",
        "WatchdogSec": "30s",
        "Restart": "on-failure",
        "RestartPreventExitStatus": "2",
        "TimeoutStopSec": "10s",
        "UMask": "0077",
    }
    for key, value in expected.items():
        if found.get(key) != [value]:
            fail(f"{key}= should be {value!r}, the unit has {found.get(key)}")
    print("contract: ok")


def check_unit(unit_path, unit_text, vapord, drop_in_text, max_exposure, what):
    """verify and security on a copy of the unit (ExecStart= the binary just built), with
    `drop_in_text` as vapord.service.d/runner.conf beside it unless None."""
    with tempfile.TemporaryDirectory(prefix="vapor-unit-") as folder:
        copy = os.path.join(folder, "vapord.service")
        rewritten, count = re.subn(r"(?m)^ExecStart=" + re.escape(INSTALLED_BINARY) + r"\b",
                                   "ExecStart=" + os.path.abspath(vapord), unit_text)
        if count != 1:
            fail(f"expected one ExecStart={INSTALLED_BINARY} line in {unit_path}")
        with open(copy, "w") as f:
            f.write(rewritten)
        if drop_in_text is not None:
            os.mkdir(os.path.join(folder, "vapord.service.d"))
            with open(os.path.join(folder, "vapord.service.d", "runner.conf"), "w") as f:
                f.write(drop_in_text)
        code, output = systemd_analyze("verify", "--man=no", copy)
        complaints = [line for line in output.splitlines()
                      if "vapord.service" in line or "runner.conf" in line]
        if code != 0 or complaints:
            fail(f"{what}: systemd-analyze verify exited {code}:\n{output}")
        print(f"{what}: verify ok")

        code, output = systemd_analyze("security", "--offline=true", copy)
        match = re.search(r"Overall exposure level for vapord\.service: (\d+\.\d+)", output)
        if match is None:
            fail(f"no overall exposure level in systemd-analyze security (exit {code}):\n{output}")
        exposure = float(match.group(1))
        if exposure > max_exposure:
            fail(f"{what}: exposure {exposure} > {max_exposure}; what counts:\n" +
                 "\n".join(line for line in output.splitlines() if line.startswith("✗")))
        print(f"{what}: security exposure {exposure} (at most {max_exposure})")


def seconds(value):
    match = re.fullmatch(r"(\d+)(s|min)", value)
    if match is None:
        fail(f"unexpected time span {value!r}")
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def check_runner_drop_in(drop_in_text):
    found = settings(drop_in_text)
    if set(found) != RUNNER_KEYS:
        fail("the runner drop-in should change exactly the settings README.md explains; "
             f"unexplained: {sorted(set(found) - RUNNER_KEYS)}, "
             f"missing: {sorted(RUNNER_KEYS - set(found))}")
    if found["KillMode"] != ["mixed"]:
        fail(f"KillMode= should be mixed (vapord ends its trainers), is {found['KillMode']}")
    timeout = seconds(found["TimeoutStopSec"][0])
    if timeout <= DEFAULT_STOP_GRACE_SECONDS + LAST_COMMIT_SECONDS:
        fail(f"TimeoutStopSec={timeout}s leaves a trainer no time to stop gracefully")
    if found["DynamicUser"] != ["no"] or not found["User"][0]:
        fail("the runner drop-in runs trainers as a real user")
    print(f"runner drop-in: ok (TimeoutStopSec {timeout}s)")


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    unit_path, drop_in_path, vapord = sys.argv[1:]
    with open(unit_path) as f:
        unit_text = f.read()
    with open(drop_in_path) as f:
        drop_in_text = f.read()
    check_contract(unit_text)
    check_unit(unit_path, unit_text, vapord, None, MAX_EXPOSURE, "unit")
    check_runner_drop_in(drop_in_text)
    check_unit(unit_path, unit_text, vapord, drop_in_text, MAX_RUNNER_EXPOSURE,
               "unit with the runner drop-in")


if __name__ == "__main__":
    main()
