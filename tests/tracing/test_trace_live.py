"""The tracer against the kernel's own counters and text output, on this machine (root)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from irqlab.model.events import EventKind
from irqlab.model.vectors import SOFTIRQ_NR
from irqlab.tracing.session import TraceSession
from live_load import assert_ran, load, plan_window, reader_priority, softirq_counts, softirq_rate, trace_fill_rate

NET_RX = SOFTIRQ_NR["NET_RX"]
SOFTIRQ_EVENTS = ("irq:softirq_raise", "irq:softirq_entry", "irq:softirq_exit")


def _net_rx_total() -> int:
    return sum(softirq_counts("NET_RX").values())


@pytest.mark.root
@pytest.mark.live
@pytest.mark.slow
def test_net_rx_entries_match_proc_softirqs_under_a_udp_flood():
    """kstat_incr_softirqs_this_cpu and trace_softirq_entry sit side by side in handle_softirqs
    (kernel/softirq.c, v6.18): over the same window the two counts agree when nothing is lost."""
    # The load ends when the block does; its duration only bounds it (set-up under a flood
    # that starves this process can take many seconds).
    with load("-m", "udp", "-l", "16", "-n", "2", duration=60):
        # This VM kind's flood makes 1-4 M events/s per CPU depending on the host: measure what
        # the buffers fill with, then size buffer and window so the buffer alone holds it all.
        rate = sum(softirq_rate("NET_RX").values())
        buffer_kb, window_s = plan_window(trace_fill_rate(SOFTIRQ_EVENTS))
        with reader_priority(), TraceSession(events=SOFTIRQ_EVENTS, buffer_kb=buffer_kb) as s:
            # /proc/softirqs read on both sides of start() and of stop(): the traced runs lie
            # between the inner and the outer count (each read takes a moment under the flood).
            before = _net_rx_total()
            s.start()
            inner_before, t0 = _net_rx_total(), time.monotonic()
            batch = s.read(timeout_s=window_s)
            inner_after, t1 = _net_rx_total(), time.monotonic()
            s.stop()
            after = _net_rx_total()
            rest = s.read()
    assert batch.complete and rest.complete, f"events lost with {buffer_kb} KiB for {window_s:.2f} s: {batch.lost} {rest.lost}"
    traced = sum(int(((b.kind == EventKind.SOFTIRQ_ENTRY) & (b.arg0 == NET_RX)).sum()) for b in (batch, rest))
    inner, outer = inner_after - inner_before, after - before
    assert_ran(inner, rate * (t1 - t0), "NET_RX runs in the window")
    # /proc/softirqs is summed from per-CPU counters one CPU after another (show_softirqs(),
    # fs/proc/softirqs.c), while runs go on: each read can be off by the runs of one read's
    # duration on the other CPU; 0.5 % of the window covers a read of ~5 ms in a 1 s window.
    assert 0.995 * inner <= traced <= 1.005 * outer, (inner, traced, outer)
    # Durations: every NET_RX entry on a CPU is followed by its exit, later.
    for cpu in set(batch.cpu.tolist()):
        b = batch.select((batch.cpu == cpu) & (batch.arg0 == NET_RX))
        ent = b.ts_ns[b.kind == EventKind.SOFTIRQ_ENTRY]
        ext = b.ts_ns[b.kind == EventKind.SOFTIRQ_EXIT]
        if len(ent) < 2 or len(ext) < 2:
            continue
        if ext[0] < ent[0]:  # the window opened inside a run
            ext = ext[1:]
        n = min(len(ent), len(ext)) - 1
        d = ext[:n] - ent[:n]
        assert (d > 0).all() and np.median(d) < 1_000_000  # positive, well under a millisecond


@pytest.mark.root
@pytest.mark.live
def test_raw_and_text_readers_see_the_same_events():
    """Two instances trace the same events; the binary decoder must agree with the kernel's
    own text formatting of them (timestamps truncated to microseconds by the text)."""
    if os.geteuid() != 0:
        pytest.skip("needs root for tracefs")
    events = SOFTIRQ_EVENTS + ("sched:sched_switch",)
    # Other work on this machine may flood NET_RX; kernel filters keep the text reader's
    # volume small enough that it loses nothing.
    quiet = {q: "vec != 2 && vec != 3" for q in SOFTIRQ_EVENTS}
    with TraceSession(events=events, reader="text", filters=quiet) as text, \
            TraceSession(events=events, filters=quiet) as raw:
        text.start()
        raw.start()
        rb = raw.read(timeout_s=0.5)
        tb = text.read(timeout_s=0.1)
        raw.stop()
        text.stop()
        rb2, tb2 = raw.read(), text.read()
    assert tb.complete and tb2.complete and rb.complete and rb2.complete
    assert not (np.isin(rb.arg0[rb.kind == EventKind.SOFTIRQ_ENTRY], (2, 3))).any()  # the filter held
    # Each instance stamps its own copy of an event when it writes it, so the two stamps of
    # one event differ by a few microseconds: compare each CPU's sequence, not timestamps.
    lo, hi = rb.start_ns + 2_000_000, rb.end_ns - 2_000_000
    matched = 0
    for cpu in range(os.cpu_count() or 1):
        r = _seq(rb, rb2, cpu, lo, hi)
        t = _seq(tb, tb2, cpu, lo - 1_000_000, hi + 1_000_000)
        at = next((i for i in range(len(t) - len(r) + 1) if t[i:i + len(r)] == r), None)
        assert at is not None, f"cpu{cpu}: the raw sequence is not in the text one"
        matched += len(r)
    assert matched > 10


def _seq(a, b, cpu, lo, hi):
    rows = []
    for x in (a, b):
        m = (x.cpu == cpu) & (x.ts_ns > lo) & (x.ts_ns < hi)
        rows += list(zip(x.kind[m].tolist(), x.pid[m].tolist(), x.arg0[m].tolist(), x.arg1[m].tolist(), x.arg2[m].tolist()))
    return rows
