"""Checks systemd/vapord.service with systemd's own tools, as an administrator would.

usage: systemd_unit_test.py UNIT_FILE VAPORD_BINARY

- `systemd-analyze verify` accepts the unit without a single complaint about it (an unknown or
  misspelt key is only a warning there, so any line naming the unit fails this test). verify also
  checks that ExecStart= exists, so it runs on a copy whose ExecStart= is the binary just built.
- `systemd-analyze security --offline=true` rates its exposure 1.1 or lower.
- The unit keeps the contract vapord's notify code was written for.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

INSTALLED_BINARY = "/usr/bin/vapord"
MAX_EXPOSURE = 1.1


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
        "TimeoutStopSec": "10s",
        "UMask": "0077",
    }
    for key, value in expected.items():
        if found.get(key) != [value]:
            fail(f"{key}= should be {value!r}, the unit has {found.get(key)}")
    print("contract: ok")


def check_verify(unit_path, unit_text, vapord):
    with tempfile.TemporaryDirectory(prefix="vapor-unit-") as folder:
        copy = os.path.join(folder, "vapord.service")
        rewritten, count = re.subn(r"(?m)^ExecStart=" + re.escape(INSTALLED_BINARY) + r"\b",
                                   "ExecStart=" + os.path.abspath(vapord), unit_text)
        if count != 1:
            fail(f"expected one ExecStart={INSTALLED_BINARY} line in {unit_path}")
        with open(copy, "w") as f:
            f.write(rewritten)
        code, output = systemd_analyze("verify", "--man=no", copy)
        complaints = [line for line in output.splitlines() if "vapord.service" in line]
        if code != 0 or complaints:
            fail(f"systemd-analyze verify exited {code}:\n{output}")
    print("verify: ok")


def check_security(unit_path):
    code, output = systemd_analyze("security", "--offline=true", unit_path)
    match = re.search(r"Overall exposure level for vapord\.service: (\d+\.\d+)", output)
    if match is None:
        fail(f"no overall exposure level in systemd-analyze security (exit {code}):\n{output}")
    exposure = float(match.group(1))
    if exposure > MAX_EXPOSURE:
        fail(f"exposure {exposure} > {MAX_EXPOSURE}; what counts:\n" +
             "\n".join(line for line in output.splitlines() if line.startswith("✗")))
    print(f"security: exposure {exposure} (at most {MAX_EXPOSURE})")


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    unit_path, vapord = sys.argv[1], sys.argv[2]
    with open(unit_path) as f:
        unit_text = f.read()
    check_contract(unit_text)
    check_verify(unit_path, unit_text, vapord)
    check_security(unit_path)


if __name__ == "__main__":
    main()
