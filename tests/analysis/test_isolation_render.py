"""The isolation report's text and JSON, on the RPS-onto-an-isolated-CPU machine (golden files)."""

from __future__ import annotations

import json

from test_isolation import rps_onto_cpu1

from irqlab.analysis.delta import compute_rates
from irqlab.analysis.isolation import isolation_report
from irqlab.outputs.isolation_json import isolation_json
from irqlab.outputs.isolation_text import render_isolation
from irqlab.outputs.jsonout import dumps


def _report():
    rates = compute_rates(*rps_onto_cpu1().pair())
    return isolation_report(rates, {1: ("--cpus",)}, frozenset()), rates


def test_isolation_text_golden(golden):
    rep, rates = _report()
    golden("isolation/rps-onto-cpu1.txt", render_isolation(rep, rates))


def test_isolation_json_golden_has_the_documented_keys(golden):
    rep, rates = _report()
    doc = isolation_json(rep, rates, 1)
    first = doc["cpus"]["1"]["offenders"][0]
    assert doc["cpus"]["1"]["verdict"] == "noisy" and {"kind", "name", "rate_per_s", "cause", "fix"} <= set(first)
    assert first["fix"]["command"].endswith("echo 1 > /sys/class/net/veth1/queues/rx-0/rps_cpus'")
    golden("isolation/rps-onto-cpu1.json", dumps(doc))
    assert json.loads(dumps(doc)) == doc
