"""Latency statistics, budget verdicts, IRQ-thread ranking and breach attribution."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from irqlab.analysis.latency import Breach, evaluate, explain, irq_thread_notes, summarize, summarize_blame
from irqlab.analysis.latency_budget import BudgetClass
from irqlab.model.events import VECTOR_NAMES, EventBatch, EventKind, TraceEvent
from irqlab.model.histogram import Stats
from irqlab.model.snapshot import TaskInfo
from irqlab.outputs import latency_json, latency_text
from irqlab.outputs.jsonout import dumps

K = EventKind


def recorded(fixtures: Path) -> tuple[dict[int, np.ndarray], dict[int, int]]:
    """The samples of a real 2-CPU probe run (tests/fixtures/latency)."""
    rows: dict[int, list[int]] = {}
    missed: dict[int, int] = {}
    for line in (fixtures / "latency" / "idle-2cpu-1000us.txt").read_text().splitlines():
        if line.startswith("# missed"):
            missed = {int(a): int(b) for a, b in (p.split(":") for p in line.split()[2:])}
        elif not line.startswith("#"):
            cpu, ns = line.split()
            rows.setdefault(int(cpu), []).append(int(ns))
    return {c: np.array(v, dtype=np.int64) for c, v in rows.items()}, missed


def test_recorded_run_statistics_are_ordered_and_exact_at_the_ends(fixtures):
    samples, missed = recorded(fixtures)
    report = summarize(samples, missed)
    for c in report.per_cpu:
        s, raw = c.stats, samples[c.cpu]
        assert s.count == raw.size and s.min_ns == raw.min() and s.max_ns == raw.max()
        assert s.avg_ns == pytest.approx(raw.mean())
        assert s.min_ns <= s.p50_ns <= s.p90_ns <= s.p99_ns <= s.p999_ns <= s.max_ns
        # a percentile is the upper edge of its 1 us bucket: never below the exact value
        assert s.p99_ns >= np.percentile(raw, 99, method="inverted_cdf")
        assert s.p99_ns - np.percentile(raw, 99, method="inverted_cdf") <= 1000
    assert report.overall.stats.count == sum(v.size for v in samples.values())
    assert report.overall.missed == sum(missed.values())


def test_wake_ups_beyond_the_linear_limit_land_in_the_overflow_row():
    report = summarize({0: np.array([5_000, 7_000, 2_500_000, 9_000_000])}, limit_ns=1_000_000)
    s = report.per_cpu[0].stats
    assert s.overflows == 2 and s.max_ns == 9_000_000
    assert s.p99_ns == 9_000_000  # beyond the linear view the log2 view answers, capped by max


def test_recorded_run_text_and_json_match_golden(fixtures, golden):
    samples, missed = recorded(fixtures)
    report = summarize(samples, missed)
    text = "\n".join(latency_text.stats_lines(report) + latency_text.hist_lines(report, "log2")
                     + latency_text.hist_lines(report, "linear")) + "\n"
    golden("latency-recorded.txt", text)
    golden("latency-recorded.json", dumps(latency_json.report_json(report)) + "\n")


def _stats(p99: int | None, p999: int | None, mx: int | None, n: int = 100) -> Stats:
    return Stats(n, 1000, 2000.0, 1500, 1800, p99, p999, mx, 0)


def _budget(**limits) -> BudgetClass:
    return BudgetClass(name="brake", cpus=None, interval_ns=None, duration_s=None, priority=None,
                       p99_ns=limits.get("p99"), p999_ns=limits.get("p999"), max_ns=limits.get("max"),
                       consequence="late braking")


def test_budget_passes_when_the_measured_value_equals_the_limit():
    v = evaluate(_budget(max=50_000), _stats(40_000, 45_000, 50_000))
    assert v.passed and [c.metric for c in v.checks] == ["max"]


def test_budget_fails_on_any_one_limit_and_says_which():
    v = evaluate(_budget(p99=30_000, max=100_000), _stats(40_000, 45_000, 60_000))
    assert not v.passed
    assert [(c.metric, c.ok) for c in v.checks] == [("p99", False), ("max", True)]


def test_budget_with_no_samples_fails():
    assert not evaluate(_budget(max=50_000), Stats(0, None, None, None, None, None, None, None, 0)).passed


def test_budget_verdict_text_matches_golden(golden):
    verdicts = [evaluate(_budget(max=50_000), _stats(40_000, 45_000, 60_000)),
                evaluate(BudgetClass("UI update", (0, 1), None, None, None, None, None, 10_000_000, "stutter"),
                         _stats(40_000, 45_000, 60_000))]
    golden("latency-budget.txt", "\n".join(latency_text.verdict_lines(verdicts)) + "\n")


def _task(comm: str, policy: str, prio: int, cpus: tuple[int, ...] | None) -> TaskInfo:
    return TaskInfo(pid=50, comm=comm, kind="irq", cpu=None, irq=24, utime_ticks=0, stime_ticks=0, run_ns=None,
                    policy=policy, rt_priority=prio, nice=0, allowed_cpus=cpus)


def test_irq_threads_rank_against_the_probe_only_where_they_share_a_cpu():
    tasks = [_task("irq/24-a", "fifo", 50, (0,)), _task("irq/25-b", "fifo", 99, (1,)), _task("irq/26-c", "fifo", 50, (3,))]
    notes = irq_thread_notes(tasks, (0, 1), "fifo", 95)
    assert [(n.task.comm, n.cpus, n.relation) for n in notes] == [("irq/24-a", (0,), "below"), ("irq/25-b", (1,), "above")]


def test_a_sched_other_probe_ranks_below_every_threaded_handler():
    notes = irq_thread_notes([_task("irq/24-a", "fifo", 1, None)], (0,), "other", 95)
    assert notes[0].relation == "above"


# --- attribution on synthetic traces ---------------------------------------------------------

PROBE, KSOFTIRQD, HOG = 900, 22, 777
D = 1_000_000  # deadline
LOC = list(VECTOR_NAMES).index("local_timer")


def _ev(t: int, kind: K, pid: int = HOG, a0: int = 0, a1: int = 0, cpu: int = 1) -> TraceEvent:
    return TraceEvent(D + t, cpu, kind, pid, a0, a1)


def _story(extra: list[TraceEvent] = (), **meta) -> EventBatch:
    """CPU 1: a hog runs; NET_RX runs in ksoftirqd with IRQ 41 nested; the timer fires late."""
    evs = [
        _ev(-50_000, K.SCHED_SWITCH, PROBE, a0=KSOFTIRQD),
        _ev(-10_000, K.SOFTIRQ_ENTRY, KSOFTIRQD, a0=3),  # NET_RX, began before the deadline
        _ev(20_000, K.IRQ_ENTRY, KSOFTIRQD, a0=41),
        _ev(32_000, K.IRQ_EXIT, KSOFTIRQD, a0=41, a1=1),
        _ev(300_000, K.SOFTIRQ_EXIT, KSOFTIRQD, a0=3),
        _ev(301_000, K.SCHED_SWITCH, KSOFTIRQD, a0=HOG),
        _ev(310_000, K.VECTOR_ENTRY, HOG, a0=236, a1=LOC),
        _ev(312_000, K.SCHED_WAKEUP, HOG, a0=PROBE, a1=1),
        _ev(315_000, K.VECTOR_EXIT, HOG, a0=236, a1=LOC),
        _ev(316_000, K.SCHED_SWITCH, HOG, a0=PROBE),
        *extra,
    ]
    meta.setdefault("comms", {KSOFTIRQD: "ksoftirqd/1", HOG: "stress-ng"})
    meta.setdefault("start_ns", D - 100_000)  # the traced window covers the whole breach
    meta.setdefault("end_ns", D + 400_000)
    return EventBatch.from_events(sorted(evs, key=lambda e: e.ts_ns), irq_names={41: "virtio3-rx"}, **meta)


def test_a_breach_is_split_into_exclusive_times_of_each_context():
    (e,) = explain(_story(), [Breach(1, PROBE, D, D + 320_000)])
    parts = {p.label: p.duration_ns for p in e.parts}
    assert parts == {
        "NET_RX softirq in ksoftirqd/1": 300_000 - 12_000,  # its nested hard IRQ is not its time
        "IRQ 41 virtio3-rx": 12_000,
        "task ksoftirqd/1 (pid 22) before the timer interrupt (IRQs off or vCPU preempted)": 1_000,
        "task stress-ng (pid 777) before the timer interrupt (IRQs off or vCPU preempted)": 9_000,
        "LOC vector (local_timer)": 5_000,
        "task stress-ng (pid 777) after the wake-up (preemption off)": 1_000,
        "probe: switch-in to user space (syscall exit, Python)": 4_000,
    }
    assert sum(parts.values()) == 320_000  # every nanosecond of the window is accounted for
    assert e.culprit.label == "NET_RX softirq in ksoftirqd/1"
    assert (e.timer_irq_ns, e.woken_ns, e.switched_in_ns) == (310_000, D + 312_000, D + 316_000)
    assert e.complete


def test_a_breach_with_no_context_switch_before_it_is_marked_incomplete():
    batch = _story()
    late = dataclasses.replace(batch.select(batch.ts_ns > D), start_ns=D + 1)  # tracing began late
    (e,) = explain(late, [Breach(1, PROBE, D, D + 320_000)])
    assert not e.complete
    assert e.parts[0].kind == "unknown" or any(p.kind == "unknown" for p in e.parts)


def test_lost_events_on_the_probes_cpu_make_the_explanation_incomplete():
    (e,) = explain(_story(lost={1: 3}), [Breach(1, PROBE, D, D + 320_000)])
    assert not e.complete


def test_events_of_other_cpus_do_not_leak_into_a_breach():
    other = [_ev(100_000, K.IRQ_ENTRY, a0=9, cpu=0), _ev(200_000, K.IRQ_EXIT, a0=9, cpu=0)]
    (e,) = explain(_story(other), [Breach(1, PROBE, D, D + 320_000)])
    assert not any("IRQ 9" in p.label for p in e.parts)


def test_ksoftirqd_is_named_from_proc_when_the_trace_never_saw_it_switch_in():
    (e,) = explain(_story(comms={}), [Breach(1, PROBE, D, D + 320_000)], comms={KSOFTIRQD: "ksoftirqd/1"})
    assert e.culprit.label == "NET_RX softirq in ksoftirqd/1"


def test_blame_sums_contexts_over_breaches():
    batch = _story()
    exps = explain(batch, [Breach(1, PROBE, D, D + 320_000), Breach(1, PROBE, D + 20_000, D + 40_000)])
    blame = {b.label: b for b in summarize_blame(exps)}
    assert blame["IRQ 41 virtio3-rx"].breaches == 2
    assert blame["IRQ 41 virtio3-rx"].total_ns == 12_000 + 12_000


def test_explanation_text_matches_golden(golden):
    (e,) = explain(_story(), [Breach(1, PROBE, D, D + 320_000)])
    golden("latency-explain.txt", "\n".join(latency_text.explanation_lines(e, D - 2_000_000)) + "\n")


def test_the_timer_interrupt_is_the_innermost_hard_interrupt_not_a_softirq_around_it():
    evs = [
        _ev(-50_000, K.SCHED_SWITCH, PROBE, a0=HOG),
        _ev(-10_000, K.SOFTIRQ_ENTRY, HOG, a0=3),  # NET_RX from before the deadline
        _ev(200_000, K.VECTOR_ENTRY, HOG, a0=236, a1=LOC),
        _ev(201_000, K.SCHED_WAKEUP, HOG, a0=PROBE, a1=1),
        _ev(203_000, K.VECTOR_EXIT, HOG, a0=236, a1=LOC),
        _ev(250_000, K.SOFTIRQ_EXIT, HOG, a0=3),
        _ev(251_000, K.SCHED_SWITCH, HOG, a0=PROBE),
    ]
    batch = EventBatch.from_events(evs, comms={HOG: "iperf3"}, start_ns=0, end_ns=D + 400_000)
    (e,) = explain(batch, [Breach(1, PROBE, D, D + 255_000)])
    assert e.timer_irq_ns == 200_000
    assert e.culprit.label == "NET_RX softirq" and e.culprit.duration_ns == 250_000 - 3_000
