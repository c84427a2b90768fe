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


def test_isolation_text_with_the_trace_names_who_caused_each_and_says_so_per_cpu(golden, fixtures):
    from test_isolation_trace import captured

    from irqlab.analysis.isolation_trace import attribute

    rates = compute_rates(*rps_onto_cpu1().pair())
    rep = isolation_report(rates, {1: ("--cpus",)}, frozenset(), attribute(captured(fixtures), (1,), 0.01))
    text = render_isolation(rep, rates)
    assert "  traced (who caused it, per second):\n" in text and "call    rps_trigger_softirq from CPU0 at generic_exec_single+0x" in text
    golden("isolation/rps-onto-cpu1-traced.txt", text)
    doc = isolation_json(rep, rates, 1)
    assert doc["attribution"]["cpus"]["1"][0]["what"] == "rps_trigger_softirq" and doc["attribution_note"] is None


def test_an_unprivileged_report_says_attribution_needs_root():
    rates = compute_rates(*rps_onto_cpu1().pair())
    rep = isolation_report(rates, {1: ("--cpus",)}, frozenset(), None, "who caused each interruption is not traced: attribution needs root")
    assert "note: who caused each interruption is not traced: attribution needs root\n" in render_isolation(rep, rates)
    assert isolation_json(rep, rates, 1)["attribution"] is None
