"""Every alert in config/prometheus/vapor-alerts.yml links to its own section of RUNBOOK.md, and
every alert the contract names is there (a renamed heading would break the link GitHub renders)."""

import os
import re
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNBOOK_BASE = "https://github.com/vapor-monitor/vapor/blob/main/RUNBOOK.md#"
CONTRACT = ["VaporJobFailed", "VaporJobStalled", "VaporLossNotFinite", "VaporJobOverdue",
            "VaporDown", "VaporConfigReloadFailed", "VaporStoreFailing"]


def read(*path):
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


def github_anchor(heading):
    """GitHub's fragment for a Markdown heading: lower case, spaces to dashes, no punctuation."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


class RunbookLinksTest(unittest.TestCase):
    def test_each_alert_links_to_a_runbook_section_named_after_it(self):
        rules = read("config", "prometheus", "vapor-alerts.yml")
        # One chunk per rule, from its `- alert:` line to the next.
        chunks = re.split(r"^\s*- alert: ", rules, flags=re.MULTILINE)[1:]
        alerts = {chunk.split("\n", 1)[0].strip(): chunk for chunk in chunks}
        self.assertEqual(sorted(alerts), sorted(CONTRACT))

        anchors = {github_anchor(h) for h in re.findall(r"^## (.+)$", read("RUNBOOK.md"),
                                                         flags=re.MULTILINE)}
        for alert, chunk in alerts.items():
            with self.subTest(alert=alert):
                links = re.findall(r'runbook_url: "([^"]+)"', chunk)
                self.assertEqual(links, [RUNBOOK_BASE + alert.lower()])
                self.assertIn(alert.lower(), anchors)


if __name__ == "__main__":
    unittest.main(verbosity=2)
