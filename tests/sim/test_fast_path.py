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
    return {"summary": s, "events": list(m.events),
            "lines": [(ln.counts, getattr(ln, "arrived", 0), getattr(ln, "missed", 0), getattr(ln, "queued", 0),
                       ln.irq_count, ln.handled_seq, ln.masked) for ln in m.lines],
            "softnet": [(sd.processed, sd.dropped, sd.time_squeeze) for sd in m.softnet],
            "softirq": [(st.counts, st.restarts, st.handoffs, st.irq_exit_runs, st.ksoftirqd_vectors) for st in m.softirq_state],
            "rng": m.rng.bit_generator.state, "now": m.engine.now,
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


def _nic(rate: float, **dev) -> dict:
    return {"name": "eth0", "irq": 41, "kind": "napi", "cpu": 0, "arrival": {"rate": rate}, "hardirq_ns": 1000,
            "work_ns": 1000, "deliver": "forward", **dev}


QUIET_CASES = {
    # name: (machine, net, device overrides, tasks)
    "const-costs": ({}, {}, {}, [{"name": "app", "kind": "periodic", "period_us": 1000, "work_ns": 50_000}]),
    "exp-costs": ({}, {}, {"hardirq_ns": {"dist": "exp", "mean": 1200}, "work_ns": {"dist": "lognormal", "mean": 900, "spread": 400}},
                  [{"name": "app", "kind": "periodic", "period_us": 700, "work_ns": {"dist": "exp", "mean": 30_000}}]),
    "small-ring": ({}, {}, {"ring": 3, "work_ns": 4000}, []),
    "small-weight": ({}, {}, {"weight": 2, "work_ns": 3000}, []),
    "small-budget": ({}, {"netdev_budget": 3}, {"work_ns": 3000}, []),
    "budget-usecs": ({"hz": 100}, {"netdev_budget_usecs": 1}, {"work_ns": 5000}, []),
    "defer-hard-irqs": ({}, {}, {"defer_hard_irqs": 2, "gro_flush_timeout_ns": 50_000}, []),
    "two-cpus-busy": ({"cpus": 2}, {}, {}, [{"name": "hog", "kind": "hog", "cpu": 1},
                                            {"name": "rt", "kind": "periodic", "cpu": 0, "policy": "fifo", "priority": 50,
                                             "period_us": 300, "work_ns": 20_000}]),
    "era-4.9": ({"kernel": "4.9"}, {}, {}, [{"name": "hog", "kind": "hog"}]),
    # periodic arrivals on the tick's grid: hardirq + poll end exactly at the next arrival or tick
    "aligned": ({}, {}, {"arrival": {"process": "periodic", "rate": 250_000}, "hardirq_ns": 1000, "work_ns": 3000},
                [{"name": "app", "kind": "periodic", "period_us": 100, "work_ns": 4000}]),
    "aligned-timer": ({}, {}, {"arrival": {"process": "periodic", "rate": 2000}, "hardirq_ns": 250, "work_ns": 250},
                      [{"name": "app", "kind": "periodic", "period_us": 250, "work_ns": 100}]),
    "aligned-slow": ({}, {}, {"arrival": {"process": "periodic", "rate": 1000}, "hardirq_ns": 500, "work_ns": 500}, []),
    "hz-250": ({"hz": 250}, {}, {"arrival": {"process": "bursts", "rate": 900_000, "on_ms": 1, "off_ms": 3}}, []),
}


@pytest.mark.parametrize("case", sorted(QUIET_CASES))
@pytest.mark.parametrize("rate", [20_000, 300_000, 1_500_000])
def test_quiet_napi_cycles_fast_forward_to_the_same_result(case: str, rate: float) -> None:
    """sim/fastpath.py (untraced, forwarding NAPI NICs) against the general path."""
    machine, net, dev, tasks = QUIET_CASES[case]
    raw = {"machine": {"cpus": 1, "duration_s": 0.02, "warmup_s": 0.002, "seed": 11, "samples": 3, **machine},
           "net": net, "device": [_nic(rate, **dev)], "task": tasks}
    sc = parse_scenario(raw, "quiet")
    fast, slow = _outputs(sc, inline=True), _outputs(sc, inline=False)
    assert fast == slow


def test_the_fast_path_does_run(machine) -> None:
    """Not vacuous: on a quiet NIC most cycles go through sim/fastpath.py (fewer heap events)."""
    raw = {"machine": {"cpus": 1, "duration_s": 0.02, "seed": 11}, "device": [_nic(50_000)]}
    sc = parse_scenario(raw, "quiet")
    fast, slow = Machine(sc), Machine(sc)
    slow.engine.inline = False
    fast.run(), slow.run()
    assert fast.lines[0].counts == slow.lines[0].counts
    assert fast.engine.processed < slow.engine.processed / 3


@pytest.mark.parametrize("offset,taken", [(1999, False), (2000, False), (2001, True)])
def test_a_cycle_is_fast_forwarded_only_when_it_ends_before_every_queued_event(offset: int, taken: bool) -> None:
    from irqlab.sim import fastpath

    raw = {"machine": {"cpus": 1, "duration_s": 0.01, "seed": 1},
           "device": [_nic(1000, arrival={"process": "periodic", "rate": 1000})]}  # 1 us hardirq + 1 us poll
    m = Machine(parse_scenario(raw, "edge"))
    line, cpu = m.lines[0], m.cpus[0]
    cpu.cfs_rq.clear()  # ksoftirqd has run its boot step and sleeps: the CPU is idle
    m.softirq_state[0].ksoftirqd.running = False
    m.engine.until = 10**9
    m.engine.now = a = line.stream.peek()  # the first arrival, 1 ms
    line.sync(a)
    m.engine.at(a + offset, lambda _: None)  # another event, just before / at / after the cycle's end
    assert fastpath.idle_cycles(line, cpu) is taken
    assert sum(line.counts) == (1 if taken else 0)  # a refused cycle changed nothing
    assert line.queued == (0 if taken else 1)
