"""Plain tables stay readable on big machines: idle CPUs collapse, busy ones group into ranges."""

from __future__ import annotations

import numpy as np

from builders import interrupts, snapshot, softirqs
from irqlab.analysis.delta import compute_rates
from irqlab.outputs.columns import plan_columns
from irqlab.outputs.text import TableOptions, render_top


def big_machine(ncpu: int = 1152, busy=range(0, 72)):
    cpus = list(range(ncpu))
    zero = [0] * ncpu
    rx = [1000 * (i + 1) if i in busy else 0 for i in cpus]
    a = snapshot(0, interrupts=interrupts(cpus, [("120", "eth0-TxRx-0", zero), ("LOC", "Local timer interrupts", zero)]),
                 softirqs=softirqs(cpus, {"NET_RX": zero}))
    b = snapshot(1, interrupts=interrupts(cpus, [("120", "eth0-TxRx-0", rx), ("LOC", "Local timer interrupts", [250] * ncpu)]),
                 softirqs=softirqs(cpus, {"NET_RX": rx}))
    return compute_rates(a, b)


def test_idle_cpus_are_hidden_and_named():
    plan = plan_columns((0, 1, 2, 3), np.array([5.0, 0.0, 0.0, 1.0]))
    assert [c.label for c in plan.columns] == ["CPU0", "CPU3"]
    assert plan.hidden_idle == (1, 2)


def test_many_busy_cpus_are_grouped_into_ranges_that_sum():
    plan = plan_columns(tuple(range(8)), np.ones(8), max_columns=4)
    assert [c.label for c in plan.columns] == ["0-1", "2-3", "4-5", "6-7"]
    assert plan.apply(np.arange(8.0)).tolist() == [1.0, 5.0, 9.0, 13.0]


def test_cpu_filter_keeps_only_the_chosen_cpus():
    plan = plan_columns((0, 1, 2, 3), np.ones(4), only=(1, 3))
    assert [c.label for c in plan.columns] == ["CPU1", "CPU3"]


def test_all_idle_machine_keeps_one_column():
    plan = plan_columns((0, 1, 2), np.zeros(3))
    assert [c.label for c in plan.columns] == ["CPU0"]
    assert plan.hidden_idle == (1, 2)


def test_1152_cpu_top_fits_a_terminal(golden):
    out = render_top(big_machine(), TableOptions())
    width = max(len(line) for line in out.splitlines())
    assert width <= 200, f"{width} columns wide"
    assert " 0-95 " in out  # grouped into ranges
    assert "idle CPUs not shown: 72-1151" in out  # in the softirq table
    golden("top-1152cpu.txt", out)


def test_1152_cpu_top_with_every_cpu_active_still_groups():
    out = render_top(big_machine(busy=range(1152)), TableOptions(max_columns=8))
    header = next(line for line in out.splitlines() if line.startswith("IRQ"))
    assert len(header.split()) == 2 + 8 + 2
