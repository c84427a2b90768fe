"""Trace aggregation on real text traces of this VM, cross-checked with /proc/softirqs around them."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import pytest

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.sources.softirqs import parse_softirqs
from irqlab.tracing.textparse import parse_lines

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "trace"
FLOOD = FIXTURES / "udpflood-budget8-30ms.txt.gz"  # capture.sh under load.sh -m udp -l 16 -n 2 --budget 8


@functools.cache
def flood_batch():
    with gzip.open(FLOOD, "rt") as fh:
        return parse_lines(fh)


def softirq_delta(before: Path, after: Path) -> dict[tuple[str, int], int]:
    a, b = parse_softirqs(before.read_text()), parse_softirqs(after.read_text())
    d = b.counts - a.counts
    return {(v, c): int(d[i, j]) for i, v in enumerate(a.vectors) for j, c in enumerate(a.cpus)}


def runs_per_cpu(result) -> dict[tuple[str, int], int]:
    return {(h.name, c): h.gross[c].count for h in result.softirqs for c in h.gross}


def test_every_softirq_entry_of_the_flood_capture_is_a_run_or_truncated():
    r = aggregate_trace(flood_batch())
    assert r.complete
    with gzip.open(FLOOD, "rt") as fh:
        entries = [line for line in fh if " softirq_entry: " in line]
    for cpu in (0, 1):
        lines = sum(f"[00{cpu}]" in line for line in entries)
        runs = sum(n for (_, c), n in runs_per_cpu(r).items() if c == cpu)
        # An entry without its exit (the window's end) is truncated on that CPU.
        assert lines - 1 <= runs <= lines
        assert runs + r.truncated["softirq"].get(cpu, 0) >= lines


def test_the_flood_capture_shows_restarts_ksoftirqd_and_irq_exit_runs():
    r = aggregate_trace(flood_batch())
    assert sum(r.restarts.values()) > 0
    timer = next(h for h in r.softirqs if h.name == "TIMER")
    assert timer.context_share("ksoftirqd")[0] > 0  # ksoftirqd/0 ran TIMER in this window (pid 14)
    assert r.ksoftirqd_pids == (14,)
    names = {h.name for h in r.hardirqs}
    assert {"LOC", "RES", "CAL"} <= names
    for h in r.softirqs + r.hardirqs:
        for hist in h.gross.values():
            assert hist.min_ns >= 0 and hist.max_ns < 1_000_000  # tens of us here, never negative or absurd
        for c, hist in h.net.items():
            assert hist.sum_ns <= h.gross[c].sum_ns


@pytest.mark.fixtures
def test_the_shared_lightload_trace_matches_its_proc_softirqs_delta(shared_fixtures):
    d = shared_fixtures / "vm-firecracker-2cpu" / "trace-sample-lightload"
    with open(d / "trace_pipe_irq_2s.txt") as fh:
        r = aggregate_trace(parse_lines(fh))
    delta = softirq_delta(d / "softirqs.before", d / "softirqs.after")
    runs = runs_per_cpu(r)
    # The README of that capture: 1 993 vs 1 998 on CPU0, 1 992 vs 1 997 on CPU1.
    assert (runs[("NET_RX", 0)], runs[("NET_RX", 1)]) == (1993, 1992)
    for key, n in runs.items():
        assert n <= delta[key] and n >= 0.99 * delta[key] - 5
