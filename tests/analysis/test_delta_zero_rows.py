"""Rows whose counts are 0 in both readings are not differenced, yet the rates read as if they were.

interrupt_rates() differences only the rows with a nonzero total in either reading (at 1152
CPUs most rows are all zeros); the text and JSON renderers read only rows whose total delta is
not 0. These tests hold every result to the dense computation, cell by cell, on a mix of zero,
waking, busy, reset, wrapped and single-value rows, with CPUs that line up and ones that do not.
"""

from __future__ import annotations

import numpy as np

from builders import NS, interrupts, snapshot
from irqlab.analysis.delta import WRAP, compute_rates, counter_delta, interrupt_rates
from irqlab.outputs.jsonout import irqs_json
from irqlab.outputs.text import TableOptions, irq_table

CPUS = [0, 1, 2, 3]
ROWS_A = [
    ("10", "idle-a", [0, 0, 0, 0]),
    ("11", "wakes", [0, 0, 0, 0]),
    ("12", "busy", [5, 0, 7, 0]),
    ("13", "reset", [0, 900, 0, 0]),
    ("14", "idle-b", [0, 0, 0, 0]),
    ("15", "wraps", [0, 0, WRAP - 10, 0]),
    ("LOC", "Local timer interrupts", [100, 100, 100, 100]),
    ("ERR", "", 0),
    ("MIS", "", 3),
]
ROWS_B = [
    ("10", "idle-a", [0, 0, 0, 0]),
    ("11", "wakes", [0, 0, 40, 0]),
    ("12", "busy", [5, 10, 7, 0]),
    ("13", "reset", [0, 100, 0, 0]),
    ("14", "idle-b", [0, 0, 0, 0]),
    ("15", "wraps", [0, 0, 5, 0]),
    ("LOC", "Local timer interrupts", [350, 350, 350, 350]),
    ("ERR", "", 0),
    ("MIS", "", 4),
]


def dense(a, b, dt_s):
    """The rates of every cell the direct way: the whole matrix, no row left out."""
    delta, _ = counter_delta(a.counts, b.counts, dt_s)
    per_cpu = np.array([line.per_cpu for line in a.lines])
    total = delta.sum(axis=1)
    delta[~per_cpu] = np.nan
    single, _ = counter_delta(a.totals, b.totals, dt_s)
    total = np.where(per_cpu, total, single)
    return delta, delta / dt_s, total


def same(x, y):
    return x.shape == y.shape and np.array_equal(x, y, equal_nan=True)


def test_rows_of_zeros_in_both_readings_come_out_exactly_as_the_dense_computation():
    a, b = interrupts(CPUS, ROWS_A), interrupts(CPUS, ROWS_B)
    r = interrupt_rates(a, b, 2 * NS)
    delta, rate, total = dense(a, b, 2.0)
    assert same(r.delta, delta) and same(r.rate, rate)
    assert same(r.total_delta, total) and same(r.total_rate, total / 2.0)
    assert r.delta[0].tolist() == [0.0] * 4 and r.rate[4].tolist() == [0.0] * 4
    assert np.isnan(r.delta[7]).all() and np.isnan(r.rate[7]).all()  # ERR: one total, even at 0
    assert [w.message for w in r.warnings] == ["IRQ 13 (reset) counter went backwards on CPU1; not differenced"]


def test_zero_rows_when_the_cpus_do_not_line_up():
    a = interrupts([0, 1, 2, 3], ROWS_A)
    b_rows = [(irq, name, values if isinstance(values, int) else values[1:]) for irq, name, values in ROWS_B]
    b = interrupts([1, 2, 3], b_rows)
    r = interrupt_rates(a, b, NS)
    assert r.cpus == (1, 2, 3)
    delta, rate, total = dense(interrupts([1, 2, 3], [(i, n, v if isinstance(v, int) else v[1:]) for i, n, v in ROWS_A]), b, 1.0)
    assert same(r.delta, delta) and same(r.rate, rate) and same(r.total_delta, total)


def test_a_row_that_only_had_counts_before_is_still_differenced():
    a = interrupts(CPUS, [("20", "gone-quiet", [0, 0, 3, 0]), ("21", "idle", [0, 0, 0, 0])])
    b = interrupts(CPUS, [("20", "gone-quiet", [0, 0, 0, 0]), ("21", "idle", [0, 0, 0, 0])])
    r = interrupt_rates(a, b, NS)
    assert np.isnan(r.total_delta[0]) and r.total_delta[1] == 0.0  # 3 -> 0 is a reset, not 0
    assert [w.kind for w in r.warnings] == ["reset"]


def test_renderers_read_only_active_rows_and_print_what_the_whole_matrix_says():
    a, b = interrupts(CPUS, ROWS_A), interrupts(CPUS, ROWS_B)
    rates = compute_rates(snapshot(1.0, interrupts=a), snapshot(3.0, interrupts=b))
    rows = irqs_json(rates, None, schema=2)
    by_irq = {row["irq"]: row for row in rows}
    assert by_irq["10"]["delta"] == {} and by_irq["14"]["rate"] == {}
    assert by_irq["11"]["delta"] == {"2": 40} and by_irq["11"]["rate"] == {"2": 20}
    assert by_irq["13"]["delta"] == {"1": None}  # the reset cell stays, as null
    assert by_irq["15"]["delta"] == {"2": 15}
    assert by_irq["ERR"]["delta"] == {} and by_irq["MIS"]["total_delta"] == 1
    assert irqs_json(rates, (2,), schema=2)[1]["delta"] == {"2": 40}
    # CPU3 only saw LOC: it is a column of the text table; with every row shown, nothing hides it.
    table = "\n".join(irq_table(rates, TableOptions(max_columns=4)))
    assert "CPU3" in table and "idle CPUs not shown" not in table
