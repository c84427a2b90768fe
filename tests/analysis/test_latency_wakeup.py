"""Kernel timing of probe wake-ups: expiry -> waking -> switch-in chains met with the probe's deadlines."""

from __future__ import annotations

import numpy as np

from irqlab.analysis.wakeup import deadlines_ns, kernel_wakeups, match, summarize_matched, wakeup_report
from irqlab.model.events import EventBatch, EventKind, TraceEvent

PID, OTHER = 4242, 777
START, INTERVAL = 1_000_000_000, 1_000_000
K = EventKind


def chain(cpu: int, deadline: int, irq: int, thread: int, pid: int = PID, timer: int = 0xFFFF1000) -> list[TraceEvent]:
    """One timer wake-up: expiry `irq` ns after the deadline, switch-in `thread` ns after that."""
    exp = deadline + irq
    return [TraceEvent(exp - 500, cpu, K.VECTOR_ENTRY, 0, 236, 0),  # LOC, before the expiry
            TraceEvent(exp, cpu, K.HRTIMER_EXPIRE, 0, timer, exp, 0xABC),
            TraceEvent(exp + 200, cpu, K.SCHED_WAKEUP, 0, pid, cpu, 4),
            TraceEvent(exp + thread, cpu, K.SCHED_SWITCH, 0, pid, 0, 4)]


def test_deadlines_replay_the_probes_skips_after_an_overrun():
    # the 2nd wake-up came 2.5 periods late: deadlines 3 and 4 were skipped, the next sample is deadline 5
    s = np.array([10_000, 2_500_000, 20_000, 30_000], np.int64)
    assert deadlines_ns(s, START, INTERVAL).tolist() == [START + k * INTERVAL for k in (1, 2, 5, 6)]


def test_each_wake_up_splits_into_irq_and_thread_latency_that_add_up_exactly():
    evs = chain(0, START + INTERVAL, 7_000, 13_000) + chain(0, START + 2 * INTERVAL, 5_500, 9_250)
    samples = np.array([25_000, 17_000], np.int64)
    (w,) = wakeup_report(EventBatch.from_events(evs), [(0, PID, samples)], START, INTERVAL)
    assert w.irq_ns.tolist() == [7_000, 5_500] and w.thread_ns.tolist() == [13_000, 9_250]
    assert w.kernel_ns.tolist() == [20_000, 14_750] == (w.irq_ns + w.thread_ns).tolist()
    assert w.user_ns.tolist() == [25_000, 17_000] and w.kernel_above_user == 0
    assert w.unmatched_user == 0 and w.unmatched_kernel == 0 and w.other_wakings == 0


def test_a_waking_not_straight_after_an_hrtimer_expiry_is_not_a_timer_wake_up():
    # the parent's "go" on the pipe wakes the probe from another CPU, after a softirq there
    go = [TraceEvent(START - 10_000, 1, K.SOFTIRQ_ENTRY, 0, 1), TraceEvent(START - 9_000, 1, K.SCHED_WAKEUP, 99, PID, 0, 4),
          TraceEvent(START - 8_000, 0, K.SCHED_SWITCH, 0, PID, 0, 4)]
    batch = EventBatch.from_events(go + chain(0, START + INTERVAL, 3_000, 4_000))
    expiry, switch, other, _ = kernel_wakeups(batch, PID)
    assert expiry.tolist() == [START + INTERVAL + 3_000] and switch.tolist() == [START + INTERVAL + 7_000] and other == 1


def test_another_tasks_timer_on_the_same_cpu_is_not_the_probes():
    evs = chain(0, START + INTERVAL, 3_000, 4_000, pid=OTHER) + chain(0, START + INTERVAL, 6_000, 2_000)
    w = match(0, PID, np.array([9_000], np.int64), np.array([START + INTERVAL]), EventBatch.from_events(sorted(evs, key=lambda e: e.ts_ns)))
    assert w.irq_ns.tolist() == [6_000] and w.thread_ns.tolist() == [2_000]


def test_the_tick_expiring_in_the_same_interrupt_first_does_not_hide_the_probes_expiry():
    d = START + INTERVAL
    evs = [TraceEvent(d + 1_000, 0, K.HRTIMER_EXPIRE, 0, 0xAAAA, d, 0x111),  # tick_nohz_handler
           TraceEvent(d + 1_500, 0, K.SOFTIRQ_RAISE, 0, 1),
           TraceEvent(d + 2_000, 0, K.HRTIMER_EXPIRE, 0, 0xBBBB, d, 0x222),  # the probe's hrtimer_wakeup
           TraceEvent(d + 2_100, 0, K.SCHED_WAKEUP, 0, PID, 0, 4),
           TraceEvent(d + 4_000, 0, K.SCHED_SWITCH, 0, PID, 0, 4)]
    w = match(0, PID, np.array([5_000], np.int64), np.array([d]), EventBatch.from_events(evs))
    assert w.irq_ns.tolist() == [2_000] and w.kernel_ns.tolist() == [4_000]


def test_wake_ups_missing_from_the_trace_are_counted_not_guessed():
    # three samples, the trace holds only the second wake-up (events lost, or tracing started late)
    samples = np.array([12_000, 15_000, 11_000], np.int64)
    (w,) = wakeup_report(EventBatch.from_events(chain(0, START + 2 * INTERVAL, 4_000, 6_000)), [(0, PID, samples)],
                         START, INTERVAL)
    assert w.deadline_ns.tolist() == [START + 2 * INTERVAL] and w.user_ns.tolist() == [15_000]
    assert w.unmatched_user == 2


def test_a_timer_wake_up_before_the_first_deadline_meets_no_sample():
    evs = chain(0, START - INTERVAL // 2, 1_000, 1_000) + chain(0, START + INTERVAL, 2_000, 2_000)
    (w,) = wakeup_report(EventBatch.from_events(evs), [(0, PID, np.array([5_000], np.int64))], START, INTERVAL)
    assert w.deadline_ns.tolist() == [START + INTERVAL] and w.unmatched_kernel == 1


def test_a_kernel_figure_above_the_user_one_is_counted_as_inconsistent():
    (w,) = wakeup_report(EventBatch.from_events(chain(0, START + INTERVAL, 4_000, 6_000)),
                         [(0, PID, np.array([9_000], np.int64))], START, INTERVAL)
    assert w.kernel_above_user == 1


def test_the_text_table_puts_kernel_parts_beside_the_user_figure_and_says_what_is_missing():
    from irqlab.outputs.latency_text import wakeup_lines

    evs = chain(0, START + INTERVAL, 7_000, 13_000) + chain(0, START + 2 * INTERVAL, 5_000, 9_000)
    samples = np.array([25_000, 17_000, 30_000], np.int64)  # the third wake-up is not in the trace
    (w,) = wakeup_report(EventBatch.from_events(evs), [(0, PID, samples)], START, INTERVAL)
    lines = wakeup_lines([summarize_matched(w)])
    head, row = lines[1].split(), lines[2].split()
    cell = dict(zip(head, row))
    assert cell["WAKEUPS"] == "3" and cell["TIMED"] == "2"
    assert (cell["IRQ_AVG_us"], cell["THREAD_AVG_us"], cell["KERNEL_AVG_us"]) == ("6.0", "11.0", "17.0")
    assert (cell["USER_AVG_us"], cell["RETURN_AVG_us"]) == ("21.0", "4.0")
    assert lines[3] == "# CPU 0: 1 wake-ups whose timer expiry the kernel side did not see (events lost, or outside the window)"


def test_a_waking_without_a_switch_in_of_its_own_does_not_borrow_the_next_one():
    d1, d2 = START + INTERVAL, START + 2 * INTERVAL
    # woken at d1 while still on the CPU (no switch follows), then a normal wake-up at d2
    evs = chain(0, d1, 1_000, 2_000)[:3] + chain(0, d2, 3_000, 4_000)
    expiry, switch, _, none = kernel_wakeups(EventBatch.from_events(evs), PID)
    assert expiry.tolist() == [d2 + 3_000] and switch.tolist() == [d2 + 7_000] and none == 1


def test_a_switch_in_the_kernel_did_not_trace_is_counted_and_the_next_one_not_borrowed():
    # Seen on this VM: a switch out of some tasks is never traced. The probe woke at d1, ran,
    # switched out (its own switch event is there), and woke again at d2 normally.
    d1, d2 = START + INTERVAL, START + 2 * INTERVAL
    evs = chain(0, d1, 1_000, 2_000)[:3] + [TraceEvent(d1 + 20_000, 0, K.SCHED_SWITCH, PID, 105, 1, 110)]
    evs += chain(0, d2, 3_000, 4_000)
    (w,) = wakeup_report(EventBatch.from_events(evs), [(0, PID, np.array([18_000, 9_000], np.int64))], START, INTERVAL)
    assert w.deadline_ns.tolist() == [d2] and w.kernel_ns.tolist() == [7_000]
    assert w.no_switch_in == 1 and w.unmatched_user == 1


def test_an_explained_breach_takes_the_kernel_figure_from_the_same_events_and_its_parts_add_up_to_it():
    from irqlab.analysis.latency import Breach, explain

    d = START + INTERVAL
    evs = chain(0, d, 70_000, 40_000)
    # the LOC exits after the waking; the probe, switched in, is interrupted once more before its clock read
    evs += [TraceEvent(d + 70_300, 0, K.VECTOR_EXIT, 0, 236, 0), TraceEvent(d + 112_000, 0, K.IRQ_ENTRY, PID, 30, 0),
            TraceEvent(d + 115_000, 0, K.IRQ_EXIT, PID, 30, 0)]
    batch = EventBatch.from_events(sorted(evs, key=lambda e: e.ts_ns))
    (e,) = explain(batch, [Breach(0, PID, d, d + 120_000)])
    (w,) = wakeup_report(batch, [(0, PID, np.array([120_000], np.int64))], START, INTERVAL)
    assert (e.irq_ns, e.thread_ns, e.kernel_ns) == (int(w.irq_ns[0]), int(w.thread_ns[0]), int(w.kernel_ns[0]))
    assert e.irq_ns + e.thread_ns == e.kernel_ns == 110_000
    assert e.kernel_charged_ns == e.kernel_ns, "the parts up to the switch-in sum to the kernel figure"
    assert sum(p.duration_ns for p in e.parts) == e.breach.latency_ns == 120_000
    from irqlab.outputs.latency_json import explanation_json
    from irqlab.outputs.latency_text import explanation_lines

    assert ("  kernel: IRQ 70.0 (deadline -> hrtimer expiry) + THREAD 40.0 (expiry -> switch-in) = KERNEL 110 us, "
            "the parts above up to the switch-in; then 10.0 us back to user space") in explanation_lines(e, START)
    doc = explanation_json(e)
    assert (doc["kernel_irq_us"], doc["kernel_thread_us"], doc["kernel_us"]) == (70.0, 40.0, 110.0)
