"""Reads Vapor's Grafana files the way Grafana does: the dashboard's panels (rows included), its
queries with their variables substituted, and the provisioned data sources."""

import glob
import json
import os
import re
from dataclasses import dataclass

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRAFANA = os.path.join(REPO, "grafana")
DASHBOARD = os.path.join(GRAFANA, "dashboards", "vapor-training.json")
DATASOURCES = os.path.join(GRAFANA, "provisioning", "datasources")

# What Grafana substitutes for its own interval and range variables, for a dashboard showing the
# last hour (at 15 s a point) of data scraped every 5 s (the provisioned timeInterval).
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "3600s",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# $name, ${name}, ${name:format} and the deprecated [[name]].
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]")


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def load_datasources():
    """Every data source of every provisioning file, as a list of dicts."""
    datasources = []
    for path in sorted(glob.glob(os.path.join(DATASOURCES, "*.yaml")) +
                       glob.glob(os.path.join(DATASOURCES, "*.yml"))):
        with open(path) as f:
            datasources += yaml.safe_load(f).get("datasources", [])
    return datasources


def all_panels(dashboard):
    """Every panel, including those inside collapsed rows, in dashboard order."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def datasource_refs(dashboard):
    """(where, ref) for every data source reference: panels, targets, annotations, variables."""
    for panel in all_panels(dashboard):
        where = f"panel {panel.get('id')} ({panel.get('title')!r})"
        if "datasource" in panel:
            yield where, panel["datasource"]
        for target in panel.get("targets", []):
            yield f"{where} target {target.get('refId')}", target.get("datasource")
    for annotation in dashboard["annotations"]["list"]:
        yield f"annotation {annotation['name']!r}", annotation.get("datasource")
    for variable in dashboard["templating"]["list"]:
        if "datasource" in variable:
            yield f"variable {variable['name']!r}", variable["datasource"]


@dataclass
class Query:
    where: str
    expr: str
    instant: bool  # an instant query (stat, gauge, table) rather than a range query


def queries(dashboard):
    """Every PromQL expression a panel target or an annotation runs, as Grafana would run it."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            instant = bool(target.get("instant")) and not target.get("range", False)
            yield Query(f"panel {panel['id']} ({panel['title']!r}) target {target['refId']}",
                        target["expr"], instant)
    for annotation in dashboard["annotations"]["list"]:
        # Grafana's Prometheus annotations are range queries with the annotation's step.
        yield Query(f"annotation {annotation['name']!r}", annotation["expr"], instant=False)


def variable_query(variable):
    """The query text of a query variable (an object since Grafana 10, a string before)."""
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*$")


def parse_label_values(query):
    """label_values(series, label) or label_values(label) as (series or None, label)."""
    match = LABEL_VALUES.match(query)
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group(1), match.group(2)


def regex_escape(value):
    """Grafana's Prometheus regex escaping of a variable value."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\1", value)


def format_value(values, fmt):
    """A variable's values as Grafana writes them into a Prometheus query: a single value
    regex-escaped, several as a regex alternation (the `regex` format does the same)."""
    if isinstance(values, str):
        values = [values]
    if fmt in (None, "regex"):
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "raw":
        return ",".join(values)
    raise ValueError(f"variable format {fmt!r} is not handled here")


def interpolate(text, variables, default_format=None):
    """`text` with dashboard `variables` (name -> value or list of values) and Grafana's
    built-in interval variables substituted; an unknown variable is an error. Values go in as
    into a Prometheus query unless `default_format` says otherwise ("raw" for a link)."""
    def replace(match):
        name = match.group(1) or match.group(2) or match.group(4)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        if name not in variables:
            raise KeyError(f"unknown variable ${name} in {text!r}")
        return format_value(variables[name], match.group(3) or default_format)
    return VARIABLE.sub(replace, text)


def constants(dashboard):
    """The dashboard's constant variables, name -> value."""
    return {v["name"]: v["query"] for v in dashboard["templating"]["list"]
            if v["type"] == "constant"}
