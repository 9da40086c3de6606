"""`cpack -G DEB` on this build tree, into a temp folder: the package's name, control fields
(Depends computed by dpkg-shlibdeps), contents, conffiles, an extracted config that passes
`vapord --check-config`, and -- as root -- dpkg installing, reinstalling over an edited conffile,
removing and purging it in a private root with a stand-in systemctl that records its calls."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import packaging_support as support

ARGS = support.parse_arguments(extra=("--cpack", "--version"))
PREFIX = "/usr"
CONFIG_DIR = support.under_prefix(PREFIX, ARGS.config_dir)

# Run-time libraries vapord links, each of which must be in Depends.
REQUIRED_DEPENDS = [r"libboost-json[0-9.]+", r"libyaml-cpp[0-9.]+", r"libsqlite3-0",
                    r"libsystemd0", r"libprometheus-cpp-core[0-9.]+", r"libc6", r"libstdc\+\+6"]

FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$VAPOR_SYSTEMCTL_LOG"
"""


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n"
                             + result.stdout + result.stderr)
    return result.stdout


def architecture():
    return run(["dpkg", "--print-architecture"]).strip()


class DebTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.TemporaryDirectory(prefix="vapor-deb-")
        output = os.path.join(cls.work.name, "out")
        run([ARGS.cpack, "-G", "DEB", "-B", output,
             "--config", os.path.join(ARGS.build_dir, "CPackConfig.cmake")])
        cls.deb = os.path.join(output, f"vapor_{ARGS.version}_{architecture()}.deb")
        cls.control_dir = os.path.join(cls.work.name, "control")
        if os.path.exists(cls.deb):
            run(["dpkg-deb", "--control", cls.deb, cls.control_dir])

    @classmethod
    def tearDownClass(cls):
        cls.work.cleanup()

    def setUp(self):
        self.assertTrue(os.path.isfile(self.deb), f"cpack made no {self.deb}")

    def field(self, name):
        return run(["dpkg-deb", "--field", self.deb, name]).strip()

    def contents(self):
        """{path without the leading '.': (mode string, owner)} from dpkg-deb --contents."""
        entries = {}
        for line in run(["dpkg-deb", "--contents", self.deb]).splitlines():
            mode, owner, _size, _date, _time, path = line.split(maxsplit=5)
            entries[path.split(" -> ")[0].removeprefix(".").rstrip("/") or "/"] = (mode, owner)
        return entries

    def test_control_fields(self):
        self.assertEqual(self.field("Package"), "vapor")
        self.assertEqual(self.field("Version"), ARGS.version)
        self.assertEqual(self.field("Architecture"), architecture())
        self.assertEqual(self.field("Section"), "admin")
        self.assertEqual(self.field("Priority"), "optional")
        self.assertRegex(self.field("Maintainer"), r"^.+ <[^@ ]+@[^@ ]+>$")
        description = self.field("Description").splitlines()
        self.assertGreater(len(description), 2, "a summary and an extended description")
        self.assertTrue(all(len(line) <= 80 for line in description), description)
        recommends = {item.strip() for item in self.field("Recommends").split(",")}
        self.assertEqual(recommends, {"prometheus", "prometheus-alertmanager"})

    def test_depends_computed_from_the_binary(self):
        depends = [item.split()[0] for item in self.field("Depends").split(",") if item.strip()]
        for pattern in REQUIRED_DEPENDS:
            with self.subTest(pattern=pattern):
                self.assertTrue(any(re.fullmatch(pattern, name) for name in depends),
                                f"no {pattern} in Depends: {depends}")

    def test_contents(self):
        entries = self.contents()
        self.assertEqual(entries.get(PREFIX + "/bin/vapord"), ("-rwxr-xr-x", "root/root"))
        expected = support.expected_files(ARGS.source_dir, PREFIX, ARGS.unit_dir, ARGS.config_dir)
        for path in sorted(expected):
            with self.subTest(path=path):
                self.assertEqual(entries.get(path), ("-rw-r--r--", "root/root"))
        for path, (mode, owner) in entries.items():
            with self.subTest(path=path):
                self.assertEqual(owner, "root/root")
                self.assertTrue(path in ("/", "/etc", PREFIX, CONFIG_DIR) or
                                path.startswith((PREFIX + "/", CONFIG_DIR + "/")),
                                "outside the prefix and the configuration folder")
                if path.startswith(PREFIX + "/share/vapor/") and not mode.startswith("d"):
                    self.assertIn(path, expected, "a file no install rule accounts for")

    def test_conffiles_are_the_default_config(self):
        with open(os.path.join(self.control_dir, "conffiles")) as file:
            conffiles = file.read().split()
        self.assertEqual(sorted(conffiles),
                         sorted([CONFIG_DIR + "/jobs.yaml", CONFIG_DIR + "/vapord.yaml"]))
        entries = self.contents()
        for conffile in conffiles:
            self.assertIn(conffile, entries)

    def test_maintainer_scripts_are_executable_shell(self):
        for name in ("postinst", "prerm", "postrm"):
            with self.subTest(script=name):
                path = os.path.join(self.control_dir, name)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o755)
                run(["sh", "-n", path])

    def test_extracted_config_passes_check_config(self):
        root = os.path.join(self.work.name, "extracted")
        run(["dpkg-deb", "--extract", self.deb, root])
        for name in ("vapord.yaml", "jobs.yaml"):
            self.assertEqual(
                support.read_bytes(root + CONFIG_DIR + "/" + name),
                support.read_bytes(os.path.join(ARGS.source_dir, "config", name)))
        support.check_installed_config(self, root + PREFIX + "/bin/vapord", root + CONFIG_DIR,
                                       os.path.join(self.work.name, "extracted-check"))

    @unittest.skipUnless(os.geteuid() == 0, "dpkg --root needs root to install files as root")
    def test_dpkg_lifecycle_keeps_edited_conffile_never_starts_and_purge_cleans_up(self):
        root = os.path.join(self.work.name, "dpkg-root")
        for folder in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "run/systemd/system"):
            os.makedirs(os.path.join(root, folder))
        open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
        # The scripts look for $DPKG_ROOT/run/systemd/system, so they act as under systemd and
        # call this systemctl (first on PATH) instead of the host's.
        fake_bin = os.path.join(self.work.name, "fake-bin")
        os.makedirs(fake_bin)
        with open(os.path.join(fake_bin, "systemctl"), "w") as file:
            file.write(FAKE_SYSTEMCTL)
        os.chmod(os.path.join(fake_bin, "systemctl"), 0o755)
        log = os.path.join(self.work.name, "systemctl.log")
        environment = dict(os.environ, PATH=fake_bin + ":" + os.environ["PATH"],
                           VAPOR_SYSTEMCTL_LOG=log)

        def dpkg(*arguments):
            open(log, "w").close()
            run(["dpkg", "--root", root, "--force-script-chrootless", "--force-depends",
                 *arguments], env=environment, stdin=subprocess.DEVNULL)
            with open(log) as file:
                calls = file.read().splitlines()
            for call in calls:
                self.assertNotRegex(call, r"^(start|enable|restart|reload-or-restart)\b",
                                    "the package never starts or enables vapord by itself")
            return calls

        edited = root + CONFIG_DIR + "/vapord.yaml"
        self.assertEqual(dpkg("--install", self.deb), ["daemon-reload"])
        self.assertTrue(os.access(root + PREFIX + "/bin/vapord", os.X_OK))
        with open(edited, "a") as file:
            file.write("# edited by the administrator\n")
        edited_text = support.read_bytes(edited)

        calls = dpkg("--install", self.deb)
        self.assertEqual(support.read_bytes(edited), edited_text, "dpkg replaced the edit")
        self.assertIn("try-restart vapord.service", calls, "an upgrade restarts a running vapord")

        self.assertEqual(dpkg("--remove", "vapor"), ["stop vapord.service", "daemon-reload"])
        self.assertFalse(os.path.exists(root + PREFIX + "/bin/vapord"))
        self.assertEqual(support.read_bytes(edited), edited_text, "remove keeps conffiles")

        state = os.path.join(root, "var/lib/private/vapor")
        os.makedirs(state)
        open(os.path.join(state, "vapor.db"), "w").close()
        os.symlink("private/vapor", os.path.join(root, "var/lib/vapor"))
        self.assertEqual(dpkg("--purge", "vapor"), ["daemon-reload"])
        self.assertFalse(os.path.exists(root + CONFIG_DIR), "purge removes the conffiles")
        self.assertFalse(os.path.exists(state), "purge removes the database")
        self.assertFalse(os.path.lexists(os.path.join(root, "var/lib/vapor")))


if __name__ == "__main__":
    if shutil.which("dpkg-deb") is None:
        sys.exit("dpkg-deb not found: this test needs Debian's dpkg")
    unittest.main(argv=sys.argv[:1], verbosity=2)
