"""Live: a traced UDP flood window agrees with /proc/softirqs over the same window (root)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from live_load import assert_ran, load, plan_window, reader_priority, softirq_counts, softirq_rate, trace_fill_rate

pytestmark = [pytest.mark.live, pytest.mark.root, pytest.mark.slow]


def test_net_rx_entries_match_proc_softirqs_per_cpu_under_a_udp_flood():
    if os.geteuid() != 0:
        pytest.skip("needs root for tracefs")
    from irqlab.analysis.trace_aggregate import aggregate_trace
    from irqlab.model.events import EventBatch, EventKind
    from irqlab.tracing.decode import DEFAULT_EVENTS, OPTIONAL_EVENTS
    from irqlab.tracing.session import TraceSession

    # The load ends when the block does; its duration only bounds it.
    with load("-m", "udp", "-l", "16", "-n", "2", duration=60):
        rate = softirq_rate("NET_RX")
        # Sized from this machine's measured fill rate: the buffer alone holds the window.
        buffer_kb, window_s = plan_window(trace_fill_rate(DEFAULT_EVENTS, OPTIONAL_EVENTS))
        with reader_priority(), TraceSession(events=DEFAULT_EVENTS, optional=OPTIONAL_EVENTS, buffer_kb=buffer_kb) as session:
            name = session.instance.path.name
            outer0 = softirq_counts()
            session.start()
            inner0, t0 = softirq_counts(), time.monotonic()
            first = session.read(window_s)
            inner1, t1 = softirq_counts(), time.monotonic()
            session.stop()
            outer1 = softirq_counts()
            batch = EventBatch.concat([first, session.read()])
    assert not os.path.exists(f"/sys/kernel/tracing/instances/{name}")  # removed (and tracefs unmounted if we mounted it)
    result = aggregate_trace(batch)
    assert result.complete, f"the kernel dropped events {batch.lost} with {buffer_kb} KiB per CPU for {window_s:.2f} s"
    rx = next(h for h in result.softirqs if h.name == "NET_RX")
    assert_ran(sum(inner1[c] - inner0[c] for c in inner1), sum(rate.values()) * (t1 - t0), "NET_RX runs in the window")
    for cpu in sorted(inner1):
        inner, outer = inner1[cpu] - inner0[cpu], outer1[cpu] - outer0[cpu]
        entries = int(((batch.kind == EventKind.SOFTIRQ_ENTRY) & (batch.arg0 == 3) & (batch.cpu == cpu)).sum())
        # The traced runs of a CPU lie between the counts read inside and outside the window
        # (kstat_incr_softirqs_this_cpu() next to trace_softirq_entry() in handle_softirqs(),
        # kernel/softirq.c v6.18); /proc/softirqs reads one CPU after the other while runs go
        # on, so each bound gets the runs of one read (a few ms): 0.5 % of the window.
        assert 0.995 * inner - 20 <= entries <= 1.005 * outer + 20, (cpu, inner, entries, outer)
        hist = rx.gross.get(cpu)
        if inner > 1000:
            # Every entry is a measured run, except at most one cut by each window edge.
            assert hist.count >= entries - 2
            assert hist.min_ns > 0 and hist.max_ns < 1_000_000_000
            assert np.isfinite(hist.sum_ns / hist.count)
