"""The engine's inline completion (nothing can happen before a segment ends, so it is finished
without going through the heap) must not change a single result: every scenario kind is run
with and without it, and the summaries, /proc counts and trace events must be identical."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqlab.sim.machine import Machine
from irqlab.sim.scenario import load_scenario, parse_scenario
from irqlab.sim.summary import summarize, summary_json


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def _outputs(sc, inline: bool) -> dict:
    m = Machine(sc)
    m.engine.inline = inline
    m.run()
    s = summary_json(summarize(m))
    s.pop("heap_events", None)  # fewer heap events is the point of the fast path
    return {"summary": s, "events": list(m.events), "lines": [ln.counts for ln in m.lines],
            "loc": m.loc.counts, "res": m.res.counts, "times": [c.times for c in m.cpus],
            "tasks": [(t.name, t.run_ns, t.switches) for t in m.tasks]}


def _raw(kind: str, rate: float) -> dict:
    return {"machine": {"cpus": 2, "duration_s": 0.02, "warmup_s": 0.002, "seed": 7, "kernel": "6.18", "trace": True},
            "device": [{"name": "eth0", "irq": 41, "kind": kind, "cpu": 0, "arrival": {"rate": rate},
                        "hardirq_ns": 1000, "work_ns": {"dist": "exp", "mean": 1500}, "deliver": "rx"},
                       {"name": "eth1", "irq": 42, "kind": "netif_rx", "cpu": 1, "arrival": {"rate": rate / 3},
                        "hardirq_ns": 800, "work_ns": 1200, "deliver": "rx0"}],
            "task": [{"name": "rx", "kind": "receiver", "cpu": 1, "work_ns": 2000},
                     {"name": "rx0", "kind": "receiver", "cpu": 0, "work_ns": 2000},
                     {"name": "app", "kind": "periodic", "cpu": 1, "period_us": 500, "work_ns": 30_000,
                      "policy": "fifo", "priority": 60},
                     {"name": "hog", "kind": "hog", "cpu": 0}]}


@pytest.mark.parametrize("kind", ["napi", "netif_rx", "plain", "tasklet", "hi_tasklet", "threaded"])
@pytest.mark.parametrize("rate", [40_000, 400_000, 3_000_000])
def test_inline_completion_changes_nothing(kind: str, rate: float) -> None:
    sc = parse_scenario(_raw(kind, rate), "fast")
    assert _outputs(sc, inline=True) == _outputs(sc, inline=False)


@pytest.mark.parametrize("name", ["dumazet-udp", "nic-napi", "rt-threaded"])
def test_examples_unchanged_by_inline_completion(name: str) -> None:
    sc = load_scenario(EXAMPLES / f"{name}.toml",
                       ("machine.duration_s=0.02", "machine.warmup_s=0.002", "machine.trace=true"))
    assert _outputs(sc, inline=True) == _outputs(sc, inline=False)
