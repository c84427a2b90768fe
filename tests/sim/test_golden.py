"""Golden outputs of the simulator: the summary text and the rendered kernel files."""

from __future__ import annotations

from irqlab.outputs.proctext import render_interrupts, render_softirqs, render_softnet
from irqlab.sim.machine import Machine
from irqlab.sim.scenario import parse_scenario
from irqlab.sim.summary import render_summary, summarize

RAW = {"machine": {"cpus": 2, "duration_s": 0.02, "seed": 5, "kernel": "4.9"},
       "device": [{"name": "eth0-rx", "irq": 41, "kind": "napi", "arrival": {"rate": 1.2e6}, "work_ns": 900},
                  {"name": "i2c-dw", "irq": 9, "cpu": 1, "kind": "threaded", "arrival": {"rate": 2000}, "work_ns": 30000},
                  {"name": "snd", "irq": 17, "cpu": 1, "kind": "tasklet", "arrival": {"rate": 4000}, "work_ns": 5000}],
       "task": [{"name": "app", "cpu": 0, "kind": "periodic", "period_us": 1000, "work_ns": 20000},
                {"name": "rt", "cpu": 1, "kind": "periodic", "policy": "fifo", "priority": 80, "period_us": 500, "work_ns": 10000}]}


def test_summary_text_is_stable(golden):
    golden("sim-summary.txt", render_summary(summarize(Machine(parse_scenario(RAW, "golden")).run())))


def test_rendered_kernel_files_are_stable(golden):
    snap = Machine(parse_scenario(RAW, "golden")).run().snapshots[-1]
    golden("sim-proc.txt", render_interrupts(snap) + "\n" + render_softirqs(snap) + "\n" + render_softnet(snap))
