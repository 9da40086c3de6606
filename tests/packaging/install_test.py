"""`cmake --install` of this build tree into a DESTDIR with prefix /usr, as the package does: the
files land where they should, the installed default config passes `vapord --check-config`, and a
second install keeps an administrator's edited /etc/vapor files."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

import packaging_support as support

ARGS = support.parse_arguments(extra=("--cmake",))
PREFIX = "/usr"


def install(destdir, prefix=PREFIX):
    environment = dict(os.environ, DESTDIR=destdir)
    result = subprocess.run([ARGS.cmake, "--install", ARGS.build_dir, "--prefix", prefix],
                            env=environment, capture_output=True, text=True, timeout=240)
    if result.returncode != 0:
        raise AssertionError("cmake --install failed:\n" + result.stdout + result.stderr)
    return result.stdout


class InstallTest(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.TemporaryDirectory(prefix="vapor-install-")
        self.destdir = os.path.join(self.work.name, "root")
        self.config_dir = self.destdir + support.under_prefix(PREFIX, ARGS.config_dir)

    def tearDown(self):
        self.work.cleanup()

    def installed(self, path):
        return self.destdir + path

    def test_installs_every_file_with_its_source_content(self):
        install(self.destdir)
        vapord = self.installed(os.path.join(PREFIX, "bin/vapord"))
        self.assertTrue(os.access(vapord, os.X_OK), vapord)
        expected = support.expected_files(ARGS.source_dir, PREFIX, ARGS.unit_dir,
                                          ARGS.config_dir)
        for path, source in sorted(expected.items()):
            with self.subTest(path=path):
                self.assertTrue(os.path.isfile(self.installed(path)), "not installed")
                self.assertEqual(support.read_bytes(self.installed(path)),
                                 support.read_bytes(source), f"differs from {source}")
        # Nothing lands outside the prefix and the configuration folder.
        config = support.under_prefix(PREFIX, ARGS.config_dir)
        self.assertEqual(set(os.listdir(self.destdir)),
                         {PREFIX.split("/")[1], config.split("/")[1]})

    def test_unit_starts_the_vapord_of_its_prefix(self):
        unit_source = os.path.join(ARGS.source_dir, "systemd/vapord.service")
        if not os.path.exists(unit_source):
            self.skipTest("no systemd/vapord.service in the source tree yet")
        for prefix in ("/usr", "/usr/local"):
            with self.subTest(prefix=prefix):
                destdir = os.path.join(self.work.name, prefix.replace("/", "_"))
                install(destdir, prefix)
                unit = destdir + os.path.join(support.under_prefix(prefix, ARGS.unit_dir),
                                              "vapord.service")
                with open(unit) as file:
                    exec_start = re.search(r"^ExecStart=(\S+)", file.read(), re.MULTILINE)
                self.assertIsNotNone(exec_start, "the unit has an ExecStart")
                self.assertEqual(exec_start.group(1), prefix + "/bin/vapord")
                self.assertTrue(os.access(destdir + exec_start.group(1), os.X_OK))

    def test_installed_default_config_passes_check_config(self):
        install(self.destdir)
        support.check_installed_config(
            self, self.installed(os.path.join(PREFIX, "bin/vapord")), self.config_dir,
            os.path.join(self.work.name, "check"))

    def test_second_install_keeps_edited_config_and_restores_missing_one(self):
        install(self.destdir)
        edited = os.path.join(self.config_dir, "vapord.yaml")
        with open(edited, "a") as file:
            file.write("# edited by the administrator\n")
        edited_text = support.read_bytes(edited)
        os.remove(os.path.join(self.config_dir, "jobs.yaml"))

        output = install(self.destdir)

        self.assertEqual(support.read_bytes(edited), edited_text, "the edit was overwritten")
        self.assertIn("Keeping: " + edited, output)
        self.assertEqual(support.read_bytes(os.path.join(self.config_dir, "jobs.yaml")),
                         support.read_bytes(os.path.join(ARGS.source_dir, "config/jobs.yaml")),
                         "a deleted default is installed again")
        pristine = self.installed(os.path.join(PREFIX, "share/vapor/vapord.yaml"))
        self.assertEqual(support.read_bytes(pristine),
                         support.read_bytes(os.path.join(ARGS.source_dir, "config/vapord.yaml")),
                         "share/vapor keeps the default for comparison")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
