"""The Grafana dashboard and provisioning files, checked for what Grafana needs to load them and
for what a user sees: panels placed on the grid, data sources that exist, a job filter that
filters, and the state colours the design names."""

import os
import re
import unittest

import yaml

import dashboard_model as model

PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "gauge", "state-timeline", "table",
               "alertlist"}
GRID_COLUMNS = 24

# The job states as vapor_job_state's query folds them (1..5) and the colour each must show.
STATE_COLOURS = {"1": ("queued", "grey"), "2": ("running", "blue"), "3": ("complete", "green"),
                 "4": ("failed", "red"), "5": ("stopped", "orange")}


def colour_family(colour):
    """'grey' for a grey hex colour or name; otherwise the colour's Grafana name itself."""
    match = re.fullmatch(r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})", colour)
    if match:
        red, green, blue = (int(part, 16) for part in match.groups())
        return "grey" if max(red, green, blue) - min(red, green, blue) <= 16 else colour
    return "grey" if colour in ("gray", "grey") else colour


def state_mappings(panel):
    """Every value-mapping list of the panel that maps state codes: its defaults' and those of
    its field overrides."""
    config = panel.get("fieldConfig", {})
    found = [config.get("defaults", {}).get("mappings", [])]
    for override in config.get("overrides", []):
        found += [p["value"] for p in override["properties"] if p["id"] == "mappings"]
    return [m for m in found if m]


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dashboard = model.load_dashboard()
        cls.datasources = model.load_datasources()
        cls.panels = list(model.all_panels(cls.dashboard))

    def test_identity(self):
        self.assertEqual(self.dashboard["uid"], "vapor-training")
        self.assertEqual(self.dashboard["title"], "Vapor training")
        self.assertGreaterEqual(self.dashboard["schemaVersion"], 36)
        self.assertNotIn("id", self.dashboard, "a provisioned dashboard carries no database id")

    def test_every_panel_has_id_type_and_grid_position(self):
        for panel in self.panels:
            with self.subTest(panel=panel.get("title")):
                self.assertIsInstance(panel.get("id"), int)
                self.assertIn(panel.get("type"), PANEL_TYPES)
                grid = panel.get("gridPos", {})
                for key in ("x", "y", "w", "h"):
                    self.assertIsInstance(grid.get(key), int, f"gridPos.{key}")
                self.assertGreater(grid["w"], 0)
                self.assertGreater(grid["h"], 0)
                self.assertGreaterEqual(grid["x"], 0)
                self.assertLessEqual(grid["x"] + grid["w"], GRID_COLUMNS)

    def test_panel_ids_are_unique(self):
        ids = [panel["id"] for panel in self.panels]
        self.assertEqual(len(ids), len(set(ids)), ids)

    def test_panels_do_not_overlap(self):
        # Grafana pushes overlapping panels down, so the layout would not be the one written.
        # Panels inside a collapsed row are laid out when it opens, below the row.
        def overlap(a, b):
            return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and
                    a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
        boxes = [(p["title"], p["gridPos"]) for p in self.panels]
        for i, (title, box) in enumerate(boxes):
            for other_title, other in boxes[i + 1:]:
                self.assertFalse(overlap(box, other), f"{title!r} overlaps {other_title!r}")

    def test_query_panels_name_their_data_source(self):
        for panel in self.panels:
            if panel["type"] in ("row", "alertlist"):
                continue  # rows and the alert list run no data source query
            with self.subTest(panel=panel["title"]):
                self.assertTrue(panel.get("targets"), "a panel without queries shows nothing")
                self.assertIsInstance(panel.get("datasource"), dict)
                for target in panel["targets"]:
                    self.assertIsInstance(target.get("datasource"), dict)
                    self.assertTrue(target.get("expr"))
                    self.assertTrue(target.get("refId"))

    def test_every_data_source_reference_is_provisioned(self):
        provisioned = {ds["uid"]: ds["type"] for ds in self.datasources}
        for where, ref in model.datasource_refs(self.dashboard):
            with self.subTest(where=where):
                self.assertIsInstance(ref, dict, "a {type, uid} reference, not a name")
                self.assertIn(ref.get("uid"), provisioned)
                self.assertEqual(ref.get("type"), provisioned[ref["uid"]])

    def test_provisioned_data_sources(self):
        by_uid = {ds["uid"]: ds for ds in self.datasources}
        prometheus = by_uid["vapor-prometheus"]
        self.assertEqual(prometheus["type"], "prometheus")
        self.assertEqual(prometheus["url"], "http://127.0.0.1:9090")
        alertmanager = by_uid["vapor-alertmanager"]
        self.assertEqual(alertmanager["type"], "alertmanager")
        self.assertEqual(alertmanager["url"], "http://127.0.0.1:9093")
        self.assertEqual(alertmanager["jsonData"]["implementation"], "prometheus")
        # Silences for Prometheus's alerts go to this Alertmanager.
        self.assertEqual(prometheus["jsonData"]["alertmanagerUid"], "vapor-alertmanager")
        self.assertTrue(prometheus["jsonData"]["manageAlerts"])

    def test_dashboard_provider(self):
        path = os.path.join(model.GRAFANA, "provisioning", "dashboards", "vapor.yaml")
        with open(path) as f:
            providers = yaml.safe_load(f)["providers"]
        self.assertEqual(len(providers), 1)
        provider = providers[0]
        self.assertEqual(provider["type"], "file")
        self.assertEqual(provider["folder"], "Vapor")
        self.assertEqual(provider["options"]["path"], "/usr/share/vapor/grafana/dashboards")

    def test_job_name_variable_is_a_multi_select_of_exported_jobs(self):
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        job_name = variables["job_name"]
        self.assertEqual(job_name["type"], "query")
        self.assertTrue(job_name["multi"])
        self.assertTrue(job_name["includeAll"])
        self.assertEqual(model.parse_label_values(model.variable_query(job_name)),
                         ("vapor_job_info", "job_name"))

    def test_every_per_job_query_filters_by_the_selected_jobs(self):
        # vapor_jobs{state} counts all jobs and carries no job_name.
        for query in model.queries(self.dashboard):
            if "vapor_job_" not in query.expr:
                continue
            with self.subTest(where=query.where):
                self.assertIn('job_name=~"$job_name"', query.expr)

    def test_repeated_row_repeats_over_a_multi_select_variable(self):
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        repeated = [p for p in self.panels if p.get("repeat")]
        self.assertTrue(repeated, "one row per job")
        for panel in repeated:
            self.assertTrue(variables[panel["repeat"]]["multi"])

    def test_state_colours(self):
        mapped = [(p, m) for p in self.panels for m in state_mappings(p)]
        self.assertGreaterEqual(len({p["type"] for p, _ in mapped}), 3,
                                "state timeline, job table and per-job state stat")
        for panel, mappings in mapped:
            with self.subTest(panel=panel["title"]):
                options = {}
                for mapping in mappings:
                    self.assertEqual(mapping["type"], "value")
                    options.update(mapping["options"])
                self.assertEqual(sorted(options), sorted(STATE_COLOURS))
                for code, (state, colour) in STATE_COLOURS.items():
                    self.assertEqual(options[code]["text"], state)
                    self.assertEqual(colour_family(options[code]["color"]), colour, state)

    def test_jobs_by_state_uses_the_state_colours(self):
        stat = next(p for p in self.panels
                    if any(re.search(r"\bvapor_jobs\b", t["expr"]) for t in p.get("targets", [])))
        colours = {o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
                   for o in stat["fieldConfig"]["overrides"]}
        self.assertEqual({state: colour_family(c) for state, c in colours.items()},
                         dict(STATE_COLOURS.values()))

    def test_loss_curve_has_gradient_fill_and_a_log_scale(self):
        loss = [p for p in self.panels
                if p["type"] == "timeseries" and "vapor_job_loss" in p["targets"][0]["expr"]]
        scales = set()
        for panel in loss:
            custom = panel["fieldConfig"]["defaults"]["custom"]
            self.assertEqual(custom["gradientMode"], "opacity")
            self.assertGreater(custom["fillOpacity"], 0)
            self.assertEqual(panel["targets"][0]["legendFormat"], "{{job_name}}")
            scales.add(custom["scaleDistribution"]["type"])
        self.assertEqual(scales, {"linear", "log"})

    def test_progress_gauge(self):
        gauge = next(p for p in self.panels if p["type"] == "bargauge")
        self.assertIn("vapor_job_progress_ratio", gauge["targets"][0]["expr"])
        defaults = gauge["fieldConfig"]["defaults"]
        self.assertEqual((defaults["unit"], defaults["min"], defaults["max"]),
                         ("percentunit", 0, 1))

    def test_eta_is_in_seconds(self):
        eta = next(p for p in self.panels if p["type"] == "stat" and
                   "vapor_job_eta_seconds" in p["targets"][0]["expr"])
        self.assertEqual(eta["fieldConfig"]["defaults"]["unit"], "s")

    def test_alert_list_reads_the_provisioned_prometheus(self):
        alert_list = next(p for p in self.panels if p["type"] == "alertlist")
        names = {ds["name"]: ds["type"] for ds in self.datasources}
        # The alert list filters by data source name (not uid), among rule sources only.
        self.assertEqual(names.get(alert_list["options"]["datasource"]), "prometheus")
        self.assertTrue(alert_list["options"]["stateFilter"]["firing"])
        # No label filter: Grafana 10 and 11 drop every alert that lacks a filtered label
        # (grafana/grafana#85533), so one on job_name would hide VaporDown and the other alerts
        # that name no job.
        self.assertEqual(alert_list["options"]["alertInstanceLabelFilter"], "")

    def test_annotations_mark_state_changes_naming_the_job(self):
        # Each annotation dates its event by the value of vapord's start or end timestamp (in ms,
        # useValueForTime), not by the scrape that first saw the new state: exact, and a job that
        # starts and ends between two scrapes still gets its annotations.
        annotations = self.dashboard["annotations"]["list"]
        states = set()
        for annotation in annotations:
            with self.subTest(annotation=annotation["name"]):
                self.assertTrue(annotation["enable"])
                self.assertTrue(annotation["useValueForTime"])
                self.assertIn("{{job_name}}", annotation["titleFormat"])
                self.assertIn("job_name", annotation["tagKeys"].split(","))
                expr = annotation["expr"]
                self.assertRegex(expr,
                                 r"^\(?\s*vapor_job_(start|end)_timestamp_seconds\{[^}]*\} \* 1000")
                if "vapor_job_start_timestamp_seconds" in expr:
                    states.add("running")
                else:
                    found = re.findall(r'and on \(job_id\) vapor_job_state\{state="(\w+)"', expr)
                    self.assertEqual(len(found), 1, "one finished state per annotation")
                    states |= set(found)
        self.assertEqual(states, {"running", "complete", "failed", "stopped"})

    def test_links_to_vapord(self):
        urls = [model.interpolate(link["url"], model.constants(self.dashboard), "raw")
                for link in self.dashboard["links"]]
        self.assertIn("http://127.0.0.1:9786/", urls)


if __name__ == "__main__":
    unittest.main()
