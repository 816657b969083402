"""The PromQL of the Grafana dashboards and alert rules in deploy/, and the metric names it queries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)")
_OURS = re.compile(r"\bcse_[a-z0-9_]+\b")
_FUNCTIONS_AND_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}


def dashboard_exprs() -> list[str]:
    return [target["expr"]
            for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
            for panel in json.loads(path.read_text())["panels"]
            for target in panel.get("targets", [])]  # fmt: skip


def alert_exprs() -> list[str]:
    groups = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names_in(expr: str) -> set[str]:
    """Every metric name of a PromQL expression: our `cse_*` names, and any other name in a selector
    (`name{...}` or `name[...]`), so a foreign metric cannot slip through."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    names = set(_OURS.findall(without_strings))
    names |= {n for n in _SELECTOR.findall(without_strings) if n not in _FUNCTIONS_AND_WORDS}
    return names


def exported_names(exposition: str) -> set[str]:
    """The sample names a `/metrics` page can carry, from its `# TYPE` lines (a labelled metric with no
    series yet still has one): counters and gauges by name, histograms with `_bucket`, `_count`, `_sum`."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif kind == "counter" and not name.endswith("_total"):
            names |= {name, f"{name}_total"}
        elif kind == "info":
            names |= {name, f"{name}_info"}
        else:
            names.add(name)
    return names
