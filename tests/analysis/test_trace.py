"""Trace aggregation on small event stories: nesting, pending bits, restarts, ksoftirqd, window edges."""

from __future__ import annotations

import numpy as np
import pytest

from irqlab.analysis.trace_aggregate import HistogramLayout, aggregate_trace
from irqlab.model.events import EventBatch, TraceEvent
from irqlab.model.events import EventKind as K

US = 1_000
NET_RX, TIMER, RCU = 3, 1, 9
LOC = 236  # LOCAL_TIMER_VECTOR, arch/x86/include/asm/irq_vectors.h
LOC_ID = 0  # position of "local_timer" in model.events.VECTOR_NAMES
TASK, KSOFTIRQD0 = 500, 14


def ev(t_us: float, kind: K, arg0: int = 0, cpu: int = 0, pid: int = TASK, arg1: int = 0) -> TraceEvent:
    return TraceEvent(int(t_us * US), cpu, kind, pid, arg0, arg1)


def batch(events, **meta) -> EventBatch:
    meta.setdefault("comms", {TASK: "iperf3", KSOFTIRQD0: "ksoftirqd/0"})
    meta.setdefault("irq_names", {41: "virtio3-rx"})
    return EventBatch.from_events(sorted(events, key=lambda e: e.ts_ns), **meta)


def softirq(result, name: str):
    return next(h for h in result.softirqs if h.name == name)


def hardirq(result, name: str):
    return next(h for h in result.hardirqs if h.name == name)


def test_an_irq_nested_in_a_softirq_is_subtracted_from_its_net_duration():
    r = aggregate_trace(batch([
        ev(0, K.SOFTIRQ_ENTRY, NET_RX), ev(10, K.IRQ_ENTRY, 41), ev(15, K.IRQ_EXIT, 41, arg1=1), ev(30, K.SOFTIRQ_EXIT, NET_RX),
    ]))
    rx = softirq(r, "NET_RX")
    assert rx.gross[0].sum_ns == 30 * US
    assert rx.net[0].sum_ns == 25 * US
    assert hardirq(r, "virtio3-rx").gross[0].sum_ns == 5 * US


def test_a_handler_nested_in_a_system_vector_counts_in_its_gross_not_its_net():
    r = aggregate_trace(batch([
        ev(0, K.VECTOR_ENTRY, LOC, arg1=LOC_ID), ev(2, K.IRQ_ENTRY, 41), ev(5, K.IRQ_EXIT, 41), ev(10, K.VECTOR_EXIT, LOC, arg1=LOC_ID),
    ]))
    loc = hardirq(r, "LOC")
    assert loc.kind == "vector" and loc.key == LOC
    assert (loc.gross[0].sum_ns, loc.net[0].sum_ns) == (10 * US, 7 * US)
    irq = hardirq(r, "virtio3-rx")
    assert (irq.gross[0].sum_ns, irq.net[0].sum_ns) == (3 * US, 3 * US)
    assert not any(r.truncated["hardirq"].values())


def test_a_raise_while_the_bit_is_pending_does_not_restart_the_clock():
    r = aggregate_trace(batch([
        ev(-20, K.SOFTIRQ_RAISE, NET_RX), ev(-15, K.SOFTIRQ_ENTRY, NET_RX), ev(-10, K.SOFTIRQ_EXIT, NET_RX),
        ev(0, K.SOFTIRQ_RAISE, NET_RX), ev(5, K.SOFTIRQ_RAISE, NET_RX), ev(10, K.SOFTIRQ_ENTRY, NET_RX), ev(12, K.SOFTIRQ_EXIT, NET_RX),
    ]))
    lat = softirq(r, "NET_RX").latency[0]
    assert (lat.count, lat.min_ns) == (1, 10 * US)
    # The first entry's clock may have started before the window: not measured, counted.
    assert r.truncated["latency"] == {0: 1}


def test_a_raise_on_another_cpu_does_not_stop_or_start_this_cpus_clock():
    r = aggregate_trace(batch([
        ev(0, K.SOFTIRQ_ENTRY, NET_RX, cpu=1), ev(1, K.SOFTIRQ_EXIT, NET_RX, cpu=1),  # window start on CPU1
        ev(2, K.SOFTIRQ_RAISE, NET_RX, cpu=0),
        ev(3, K.SOFTIRQ_ENTRY, NET_RX, cpu=1), ev(4, K.SOFTIRQ_EXIT, NET_RX, cpu=1),
    ]))
    rx = softirq(r, "NET_RX")
    assert rx.latency == {}
    assert r.truncated["unraised"] == {1: 1}  # CPU1's second entry had no raise on CPU1
    assert r.truncated["latency"] == {0: 1, 1: 1}  # CPU0 still pending at the end; CPU1's first entry


def test_a_handler_reraising_its_own_vector_makes_a_restart_in_the_same_pass():
    # net_rx_action() out of budget re-raises NET_RX (net/core/dev.c); the pass restarts.
    r = aggregate_trace(batch([
        ev(0, K.SOFTIRQ_ENTRY, TIMER), ev(1, K.SOFTIRQ_EXIT, TIMER),
        ev(2, K.SOFTIRQ_ENTRY, NET_RX), ev(3, K.SOFTIRQ_RAISE, NET_RX), ev(4, K.SOFTIRQ_EXIT, NET_RX),
        ev(4.5, K.VECTOR_ENTRY, LOC, arg1=LOC_ID), ev(4.7, K.SOFTIRQ_RAISE, RCU), ev(4.9, K.VECTOR_EXIT, LOC, arg1=LOC_ID),
        ev(5, K.SOFTIRQ_ENTRY, NET_RX), ev(6, K.SOFTIRQ_EXIT, NET_RX),
        ev(7, K.SOFTIRQ_ENTRY, RCU), ev(8, K.SOFTIRQ_EXIT, RCU),
    ]))
    assert (r.passes, r.restarts) == ({0: 1}, {0: 1})
    rx = softirq(r, "NET_RX").latency[0]
    assert (rx.count, rx.max_ns) == (1, 2 * US)  # raised at 3 (inside its own run), ran at 5


def test_a_task_switch_or_a_raise_outside_hardirq_between_runs_starts_a_new_pass():
    r = aggregate_trace(batch([
        ev(0, K.SOFTIRQ_ENTRY, NET_RX), ev(1, K.SOFTIRQ_EXIT, NET_RX),
        ev(2, K.SCHED_SWITCH, TASK),
        ev(3, K.SOFTIRQ_ENTRY, NET_RX), ev(4, K.SOFTIRQ_EXIT, NET_RX),
        ev(5, K.SOFTIRQ_RAISE, NET_RX),  # process context (bh disabled), then local_bh_enable()
        ev(6, K.SOFTIRQ_ENTRY, NET_RX), ev(7, K.SOFTIRQ_EXIT, NET_RX),
    ]))
    assert (r.passes, r.restarts) == ({0: 3}, {})


def test_runs_in_ksoftirqd_and_on_irq_exit_are_told_apart():
    r = aggregate_trace(batch([
        ev(0, K.VECTOR_ENTRY, LOC, arg1=LOC_ID), ev(1, K.SOFTIRQ_RAISE, NET_RX), ev(2, K.VECTOR_EXIT, LOC, arg1=LOC_ID),
        ev(3, K.SOFTIRQ_ENTRY, NET_RX), ev(4, K.SOFTIRQ_EXIT, NET_RX),  # irq_exit(), 1 us
        ev(10, K.SOFTIRQ_ENTRY, NET_RX, pid=KSOFTIRQD0), ev(13, K.SOFTIRQ_EXIT, NET_RX, pid=KSOFTIRQD0),  # 3 us
        ev(20, K.SOFTIRQ_RAISE, NET_RX), ev(21, K.SOFTIRQ_ENTRY, NET_RX), ev(25, K.SOFTIRQ_EXIT, NET_RX),  # bh enable, 4 us
    ]))
    rx = softirq(r, "NET_RX")
    assert rx.runs_by_context[0] == {"ksoftirqd": 1, "irq_exit": 1, "other": 1}
    assert rx.ns_by_context[0] == {"ksoftirqd": 3 * US, "irq_exit": 1 * US, "other": 4 * US}
    assert rx.context_share("ksoftirqd") == pytest.approx((1 / 3, 3 / 8))


def test_ksoftirqd_pids_can_come_from_proc_when_the_batch_has_no_comm():
    events = [ev(0, K.SOFTIRQ_ENTRY, NET_RX, pid=77), ev(1, K.SOFTIRQ_EXIT, NET_RX, pid=77)]
    assert softirq(aggregate_trace(batch(events, comms={})), "NET_RX").runs_by_context[0]["ksoftirqd"] == 0
    r = aggregate_trace(batch(events, comms={}), ksoftirqd_pids=[77])
    assert softirq(r, "NET_RX").runs_by_context[0]["ksoftirqd"] == 1


def test_runs_cut_by_the_window_edges_are_truncated_not_measured():
    r = aggregate_trace(batch([
        ev(0, K.SOFTIRQ_EXIT, NET_RX), ev(1, K.IRQ_EXIT, 41),
        ev(2, K.SOFTIRQ_ENTRY, TIMER), ev(3, K.SOFTIRQ_EXIT, TIMER),
        ev(4, K.TASKLET_ENTRY, 0xFFFF1234), ev(5, K.IRQ_ENTRY, 41), ev(6, K.SOFTIRQ_ENTRY, RCU, cpu=1),
    ], symbols={0xFFFF1234: "tasklet_action_common"}))
    assert r.truncated["softirq"] == {0: 1, 1: 1}
    assert r.truncated["hardirq"] == {0: 2}
    assert r.truncated["tasklet"] == {0: 1}
    assert [h.name for h in r.softirqs] == ["TIMER"]
    assert r.hardirqs == ()


def test_a_tasklet_is_named_by_its_symbol_and_measured():
    r = aggregate_trace(batch([
        ev(0, K.SOFTIRQ_ENTRY, 6), ev(1, K.TASKLET_ENTRY, 0xFFFF1234), ev(4, K.TASKLET_EXIT, 0xFFFF1234), ev(5, K.SOFTIRQ_EXIT, 6),
    ], symbols={0xFFFF1234: "vt_tasklet"}))
    (t,) = r.tasklets
    assert (t.name, t.gross[0].sum_ns) == ("vt_tasklet", 3 * US)


def test_lost_events_make_the_result_partial():
    r = aggregate_trace(batch([ev(0, K.SOFTIRQ_ENTRY, NET_RX), ev(1, K.SOFTIRQ_EXIT, NET_RX)], lost={1: 2040}))
    assert not r.complete and r.lost == {1: 2040}
    assert 1 in r.cpus


def test_filters_limit_the_rows_not_the_numbers():
    events = [
        ev(0, K.SOFTIRQ_ENTRY, TIMER), ev(1, K.SOFTIRQ_EXIT, TIMER), ev(2, K.SOFTIRQ_ENTRY, NET_RX), ev(5, K.SOFTIRQ_EXIT, NET_RX),
        ev(6, K.SOFTIRQ_ENTRY, TIMER), ev(7, K.SOFTIRQ_EXIT, TIMER),
        ev(8, K.SOFTIRQ_ENTRY, NET_RX, cpu=1), ev(9, K.SOFTIRQ_EXIT, NET_RX, cpu=1),
        ev(10, K.IRQ_ENTRY, 41), ev(11, K.IRQ_EXIT, 41), ev(12, K.VECTOR_ENTRY, LOC, arg1=LOC_ID), ev(13, K.VECTOR_EXIT, LOC, arg1=LOC_ID),
    ]
    full = aggregate_trace(batch(events))
    only = aggregate_trace(batch(events), vectors=[NET_RX], irqs=["LOC"], cpus=[0])
    assert [h.name for h in only.softirqs] == ["NET_RX"] and [h.name for h in only.hardirqs] == ["LOC"]
    assert only.restarts == full.restarts == {0: 1}  # TIMER after NET_RX: a restart, seen with the filter too
    assert only.cpus == (0,) and set(softirq(only, "NET_RX").gross) == {0}
    assert softirq(full, "NET_RX").merged().count == 2


def test_per_cpu_histograms_merge_into_the_total():
    events = [ev(0, K.SOFTIRQ_ENTRY, NET_RX, cpu=0), ev(3, K.SOFTIRQ_EXIT, NET_RX, cpu=0),
              ev(0, K.SOFTIRQ_ENTRY, NET_RX, cpu=1), ev(13, K.SOFTIRQ_EXIT, NET_RX, cpu=1)]
    rx = softirq(aggregate_trace(batch(events)), "NET_RX")
    total = rx.merged()
    assert total.count == 2 and total.sum_ns == rx.gross[0].sum_ns + rx.gross[1].sum_ns
    assert rx.merged(cpus=[1]).sum_ns == 13 * US and total.max_ns == 13 * US


def reference_nested_pairs(events):
    """Stack-based pairing, one event at a time: the obvious algorithm the vectorised one must match."""
    stacks: dict[int, list] = {}
    pairs, orphans = [], 0
    for e in events:
        st = stacks.setdefault(e.cpu, [])
        if e.kind in (K.IRQ_ENTRY, K.VECTOR_ENTRY):
            st.append(e)
        elif st and st[-1].arg0 == e.arg0 and (st[-1].kind == K.IRQ_ENTRY) == (e.kind == K.IRQ_EXIT):
            pairs.append((st.pop(), e))
        else:
            orphans += 1
    return sorted((a.cpu, a.arg0, b.ts_ns - a.ts_ns) for a, b in pairs), orphans + sum(len(s) for s in stacks.values())


def random_nested(rng, n_top: int) -> list[TraceEvent]:
    out, t = [], 0
    for _ in range(n_top):
        cpu = int(rng.integers(0, 3))
        t += int(rng.integers(1, 50))

        def emit(depth: int, cpu: int) -> None:
            nonlocal t
            irq = int(rng.integers(20, 60))
            out.append(TraceEvent(t, cpu, K.IRQ_ENTRY, 1, irq))
            t += int(rng.integers(1, 10))
            while depth < 3 and rng.random() < 0.3:
                emit(depth + 1, cpu)
                t += int(rng.integers(1, 5))
            out.append(TraceEvent(t, cpu, K.IRQ_EXIT, 1, irq))
            t += 1

        emit(1, cpu)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_nested_pairing_matches_a_stack_on_random_windows(seed):
    rng = np.random.default_rng(seed)
    events = random_nested(rng, 300)
    cut = events[int(rng.integers(0, 20)) : len(events) - int(rng.integers(0, 20))]  # cut both edges
    r = aggregate_trace(EventBatch.from_events(cut), layout=HistogramLayout(1, 10_000))
    want, orphans = reference_nested_pairs(cut)
    got = sorted((c, h.key, int(v)) for h in r.hardirqs for c, hist in h.gross.items()
                 for v in np.repeat(np.arange(hist.nbuckets), hist.linear))
    assert got == want
    assert sum(r.truncated["hardirq"].values()) == orphans


def test_a_million_events_aggregate_with_the_same_counts():
    n = 250_000
    t = np.arange(n, dtype=np.int64) * 4_000
    cols = {
        "ts_ns": np.repeat(t, 4) + np.tile([0, 100, 1_100, 1_200], n),
        "cpu": np.repeat((np.arange(n) % 2).astype(np.int32), 4),
        "kind": np.tile(np.array([K.SOFTIRQ_RAISE, K.SOFTIRQ_ENTRY, K.SOFTIRQ_EXIT, K.SCHED_SWITCH], np.int16), n),
        "pid": np.full(4 * n, TASK, np.int32),
        "arg0": np.tile(np.array([NET_RX, NET_RX, NET_RX, TASK], np.int64), n),
        "arg1": np.zeros(4 * n, np.int64), "arg2": np.zeros(4 * n, np.int64),
    }
    r = aggregate_trace(EventBatch(**cols, start_ns=0, end_ns=int(t[-1]) + 2_000))
    rx = softirq(r, "NET_RX")
    assert rx.merged().count == n and rx.merged().max_ns == 1_000
    assert rx.merged("latency").count == n - 2 and rx.merged("latency").max_ns == 100
    assert sum(r.passes.values()) == n and r.restarts == {}
