"""Live: a traced UDP flood window agrees with /proc/softirqs over the same window (root)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from live_load import load

pytestmark = [pytest.mark.live, pytest.mark.root, pytest.mark.slow]


def test_net_rx_entries_match_proc_softirqs_within_2_percent_under_a_udp_flood():
    if os.geteuid() != 0 or not os.path.isdir("/sys/kernel/tracing/instances"):
        pytest.skip("needs root and tracefs")
    from irqlab.analysis.trace import aggregate_trace
    from irqlab.model.events import EventBatch, EventKind
    from irqlab.sources.fs import Roots
    from irqlab.sources.softirqs import read_softirqs
    from irqlab.tracing.decode import DEFAULT_EVENTS, OPTIONAL_EVENTS
    from irqlab.tracing.session import TraceSession

    roots = Roots.of(None, None)
    with load("-m", "udp", "-l", "16", "-n", "2", duration=8):
        with TraceSession(events=DEFAULT_EVENTS, optional=OPTIONAL_EVENTS, buffer_kb=16384) as session:
            name = session.instance.path.name
            before = read_softirqs(roots)
            session.start()
            first = session.read(3.0)
            session.stop()
            after = read_softirqs(roots)
            batch = EventBatch.concat([first, session.read()])
    assert name not in os.listdir("/sys/kernel/tracing/instances")
    result = aggregate_trace(batch)
    if not result.complete:
        pytest.skip(f"the kernel dropped events {batch.lost}: the 2 % check needs a complete window")
    nr = before.vectors.index("NET_RX")
    delta = after.counts[nr] - before.counts[nr]
    rx = next(h for h in result.softirqs if h.name == "NET_RX")
    for j, cpu in enumerate(before.cpus):
        entries = int(((batch.kind == EventKind.SOFTIRQ_ENTRY) & (batch.arg0 == 3) & (batch.cpu == cpu)).sum())
        assert entries == pytest.approx(int(delta[j]), rel=0.02, abs=20)
        hist = rx.gross.get(cpu)
        if delta[j] > 1000:
            # Every entry is a measured run, except at most one cut by each window edge.
            assert hist.count >= entries - 2
            assert hist.min_ns > 0 and hist.max_ns < 1_000_000_000
            assert np.isfinite(hist.sum_ns / hist.count)
