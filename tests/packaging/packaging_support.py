"""What `cmake --install` and the .deb must put where, derived from the source tree, and a
config check of an installed /etc/vapor that does not touch the host's /etc/vapor."""

import argparse
import os
import re
import shutil
import subprocess


def parse_arguments(extra=()):
    """The options tests/packaging/CMakeLists.txt passes; extra: more required option names."""
    parser = argparse.ArgumentParser()
    for name in ("--source-dir", "--build-dir", "--unit-dir", "--config-dir", *extra):
        parser.add_argument(name, required=True)
    return parser.parse_args()


def under_prefix(prefix, path):
    """A cache variable's path: absolute as is, relative under the install prefix."""
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(prefix, path))


def expected_files(source_dir, prefix, unit_dir, config_dir):
    """{absolute installed path: source file} for every file the install rules must install
    from the source tree as it is now (the unit and the monitoring folders are optional)."""
    share = os.path.join(prefix, "share/vapor")
    files = {
        os.path.join(share, "vapord.yaml"): "config/vapord.yaml",
        os.path.join(share, "jobs.yaml"): "config/jobs.yaml",
    }
    config = under_prefix(prefix, config_dir)
    files[os.path.join(config, "vapord.yaml")] = "config/vapord.yaml"
    files[os.path.join(config, "jobs.yaml")] = "config/jobs.yaml"
    if os.path.exists(os.path.join(source_dir, "systemd/vapord.service")):
        files[os.path.join(under_prefix(prefix, unit_dir), "vapord.service")] = \
            "systemd/vapord.service"
    if os.path.exists(os.path.join(source_dir, "systemd/vapord.service.d/runner.conf")):
        files[os.path.join(share, "systemd/runner.conf")] = "systemd/vapord.service.d/runner.conf"
    if os.path.exists(os.path.join(source_dir, "RUNBOOK.md")):
        files[os.path.join(share, "RUNBOOK.md")] = "RUNBOOK.md"
    folders = {
        "config/demo": "demo",
        "config/prometheus": "prometheus",
        "config/alertmanager": "alertmanager",
        "grafana/provisioning": "grafana/provisioning",
        "grafana/dashboards": "grafana/dashboards",
    }
    for source_folder, installed_folder in folders.items():
        top = os.path.join(source_dir, source_folder)
        for folder, _, names in os.walk(top):
            for name in names:
                relative = os.path.relpath(os.path.join(folder, name), top)
                files[os.path.join(share, installed_folder, relative)] = \
                    os.path.join(source_folder, relative)
    return {path: os.path.join(source_dir, source) for path, source in files.items()}


def read_bytes(path):
    with open(path, "rb") as file:
        return file.read()


def check_installed_config(test, vapord, config_dir, work_dir):
    """Runs `vapord --check-config` on copies of config_dir's vapord.yaml and jobs.yaml whose
    absolute /etc/vapor and /var/lib/vapor paths point into work_dir instead, so the installed
    files are validated rather than whatever the host has in /etc/vapor."""
    os.makedirs(work_dir)
    for name in ("vapord.yaml", "jobs.yaml"):
        shutil.copyfile(os.path.join(config_dir, name), os.path.join(work_dir, name))
    config_path = os.path.join(work_dir, "vapord.yaml")
    with open(config_path) as file:
        text = file.read()
    text = re.sub(r"/etc/vapor/", work_dir + "/", text)
    text = re.sub(r"/var/lib/vapor/", os.path.join(work_dir, "state") + "/", text)
    with open(config_path, "w") as file:
        file.write(text)
    result = subprocess.run([vapord, "--check-config", "--config", config_path],
                            capture_output=True, text=True, timeout=60)
    test.assertEqual(result.returncode, 0, result.stdout + result.stderr)
    queue = os.path.join(work_dir, "jobs.yaml")
    test.assertRegex(result.stdout, "queue " + re.escape(queue) + r": [1-9][0-9]* jobs ok",
                     "the installed queue file, not the host's, was checked")
