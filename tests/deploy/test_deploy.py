"""deploy/: alert rules pass promtool (check and unit tests), the dashboard and rules use only
metrics the exporter serves, and the systemd units verify and run valid irqlab command lines."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from irqlab.cli.export import build_registry, scrape_source
from irqlab.cli.main import build_parser
from irqlab.outputs.prometheus import HISTOGRAMS
from irqlab.sources.fs import Roots
from servers import missing_tool

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "irqlab-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "irqlab-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "irqlab-dashboard.json"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
CAPTURE = REPO / "tests" / "fixtures" / "captures" / "vm-udpflood"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing_tool("promtool")
    return path


def served_series_names() -> set[str]:
    """Every sample name the exporter serves on a capture pair, plus provider histograms."""
    import argparse

    args = argparse.Namespace(per_cpu=True, top_k=20, include=None, exclude=None, rollup_devices=False,
                              storm_warn=1e5, storm_crit=1e6, no_tasks=False, procfs=None, sysfs=None)
    readers = iter([scrape_source(Roots.capture(CAPTURE / "a")), scrape_source(Roots.capture(CAPTURE / "b"))] + [scrape_source(Roots.capture(CAPTURE / "b"))] * 5)
    registry = build_registry(args, scrape=lambda: next(readers)())
    generate_latest(registry)
    names = {s.name for fam in text_string_to_metric_families(generate_latest(registry).decode()) for s in fam.samples}
    for h in HISTOGRAMS:
        names |= {f"irqlab_{h}_seconds_bucket", f"irqlab_{h}_seconds_sum", f"irqlab_{h}_seconds_count"}
    return names


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\birqlab_[a-z_]+", expr))


def test_alert_rules_pass_promtool_check():
    res = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_alert_rules_pass_their_promtool_unit_tests_including_storm_fires_and_stays_quiet():
    text = RULE_TESTS.read_text()
    assert "alertname: IrqlabInterruptStorm\n        exp_alerts: []" in text  # the quiet case is tested
    res = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=60, cwd=RULE_TESTS.parent)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_rule_has_a_unit_test():
    alerts = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert alerts and alerts <= tested, f"untested: {alerts - tested}"


def test_rules_and_dashboard_use_only_metrics_the_exporter_serves():
    served = served_series_names()
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]] + [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    exprs += re.findall(r"expr: (.+)", RULES.read_text())
    used = set().union(*(metric_names(e) for e in exprs))
    assert used and used <= served, f"not served: {used - served}"


def test_dashboard_panels_have_unique_ids_and_do_not_overlap():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for p in panels:
        g = p["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (mine & cells), f"panel {p['title']} overlaps another"
        assert g["x"] + g["w"] <= 24
        cells |= mine


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_unit_verifies_and_runs_a_valid_irqlab_command(unit, tmp_path):
    exec_lines = [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(exec_lines) == 1
    argv = shlex.split(exec_lines[0])
    assert argv[0] == "/usr/local/bin/irqlab"
    args = build_parser(argv[1]).parse_args(argv[1:])  # exits 64 on a bad command line
    assert getattr(args, "listen", "127.0.0.1:").startswith("127.0.0.1:")
    if shutil.which("systemd-analyze") is None:
        missing_tool("systemd-analyze")
    irqlab = REPO / ".venv" / "bin" / "irqlab"
    local = tmp_path / unit.name
    local.write_text(unit.read_text().replace("/usr/local/bin/irqlab", str(irqlab)))
    res = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr
