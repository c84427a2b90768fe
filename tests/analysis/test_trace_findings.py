"""trace_findings(): what the doctor will say about a trace window."""

from __future__ import annotations

from irqlab.analysis.findings import Severity
from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.analysis.trace_findings import TraceThresholds, trace_findings
from irqlab.model.events import EventBatch, TraceEvent
from irqlab.model.events import EventKind as K

NET_RX, KSOFTIRQD1, TASK = 3, 22, 500


def net_rx_runs(n: int, cpu: int, slow_every: int, slow_ns: int, ksoftirqd_slow: bool, lost=None) -> EventBatch:
    """n NET_RX runs of 10 us on cpu; every slow_every-th one lasts slow_ns, in ksoftirqd if asked."""
    events, t = [], 0
    for i in range(n):
        slow = i % slow_every == 0
        pid = KSOFTIRQD1 if slow and ksoftirqd_slow else TASK
        dur = slow_ns if slow else 10_000
        events += [TraceEvent(t, cpu, K.SOFTIRQ_RAISE, pid, NET_RX), TraceEvent(t + 1_000, cpu, K.SOFTIRQ_ENTRY, pid, NET_RX),
                   TraceEvent(t + 1_000 + dur, cpu, K.SOFTIRQ_EXIT, pid, NET_RX), TraceEvent(t + 2_000 + dur, cpu, K.SCHED_SWITCH, pid, TASK)]
        t += 5_000 + dur
    return EventBatch.from_events(events, comms={KSOFTIRQD1: "ksoftirqd/1", TASK: "iperf3"}, lost=lost or {})


def test_a_slow_net_rx_tail_mostly_in_ksoftirqd_is_named_with_cpu_and_share():
    # 1 run in 20 takes 340 us and runs in ksoftirqd/1: p99 is 340 us, and it holds most of the time.
    r = aggregate_trace(net_rx_runs(400, 1, 20, 340_000, True))
    (f,) = [f for f in trace_findings(r) if f.code == "trace-softirq-slow"]
    assert f.severity == Severity.WARNING
    share = 20 * 340 / (20 * 340 + 380 * 10)
    assert f.title == f"NET_RX p99 340 us on CPU1, {100 * share:.0f} % of it in ksoftirqd/1"
    assert f.metrics["cpu"] == 1 and f.metrics["p99_ns"] == 340_000


def test_fast_handlers_give_no_finding_and_few_runs_give_no_percentiles():
    assert trace_findings(aggregate_trace(net_rx_runs(400, 0, 1000, 12_000, False))) == []
    assert trace_findings(aggregate_trace(net_rx_runs(50, 0, 1, 5_000_000, False))) == []


def test_a_very_slow_softirq_is_critical():
    r = aggregate_trace(net_rx_runs(200, 0, 2, 3_000_000, False))
    assert [f.severity for f in trace_findings(r) if f.code == "trace-softirq-slow"] == [Severity.CRITICAL]


def test_delegation_to_ksoftirqd_without_a_slow_tail_is_information():
    r = aggregate_trace(net_rx_runs(400, 1, 2, 30_000, True))
    (f,) = trace_findings(r)
    assert (f.code, f.severity) == ("trace-ksoftirqd-delegation", Severity.INFO)
    assert "ksoftirqd/1" in f.title


def test_a_partial_trace_says_so_first():
    r = aggregate_trace(net_rx_runs(400, 1, 20, 340_000, True, lost={1: 2040}))
    findings = trace_findings(r)
    assert findings[0].code == "trace-lost-events" and "2040" in findings[0].evidence[0]


def test_thresholds_are_the_callers():
    r = aggregate_trace(net_rx_runs(400, 0, 1000, 12_000, False))
    (f,) = trace_findings(r, TraceThresholds(softirq_p99_warn_ns=11_000))
    assert f.subject == "NET_RX on CPU0"


def test_summary_names_the_busiest_vectors_with_their_tails():
    from irqlab.analysis.trace_aggregate import aggregate_trace
    from irqlab.analysis.trace_findings import trace_summary
    from irqlab.model.events import EventBatch, EventKind, TraceEvent

    events = []
    for i in range(50):
        t = 1_000_000 * i
        events += [TraceEvent(t, 0, EventKind.SOFTIRQ_RAISE, 5, 3), TraceEvent(t + 1000, 0, EventKind.SOFTIRQ_ENTRY, 5, 3),
                   TraceEvent(t + 21_000, 0, EventKind.SOFTIRQ_EXIT, 5, 3)]
    f = trace_summary(aggregate_trace(EventBatch.from_events(events)))
    assert f.code == "trace-summary"
    assert f.evidence[0].startswith("softirq NET_RX: 50 runs, avg 20 us")


def test_system_vectors_have_wider_limits_than_device_irqs():
    from irqlab.analysis.trace_aggregate import aggregate_trace
    from irqlab.analysis.trace_findings import trace_findings
    from irqlab.model.events import EventBatch, EventKind, TraceEvent

    events = []
    for i in range(200):  # 100 us handlers: slow for a device, ordinary for the local timer
        t = 1_000_000 * i
        events += [TraceEvent(t, 0, EventKind.IRQ_ENTRY, 0, 41), TraceEvent(t + 100_000, 0, EventKind.IRQ_EXIT, 0, 41, 1),
                   TraceEvent(t + 200_000, 0, EventKind.VECTOR_ENTRY, 0, 236, 0), TraceEvent(t + 300_000, 0, EventKind.VECTOR_EXIT, 0, 236, 0)]
    codes = [(f.code, f.subject) for f in trace_findings(aggregate_trace(EventBatch.from_events(events, irq_names={41: "eth0"})))]
    assert [c for c, _ in codes] == ["trace-hardirq-slow"]
    assert codes[0][1].startswith("IRQ 41 (eth0)")


def test_more_restarts_than_passes_is_a_failed_estimate_not_a_finding():
    import dataclasses

    from irqlab.analysis.trace_aggregate import aggregate_trace
    from irqlab.analysis.trace_findings import trace_findings
    from irqlab.model.events import EventBatch

    empty = aggregate_trace(EventBatch.empty())
    r = dataclasses.replace(empty, cpus=(0,), passes={0: 2931}, restarts={0: 55546})
    assert not [f for f in trace_findings(r) if f.code == "trace-softirq-restarts"]
    r = dataclasses.replace(empty, cpus=(0,), passes={0: 1000}, restarts={0: 300})
    assert [f.code for f in trace_findings(r) if f.code == "trace-softirq-restarts"] == ["trace-softirq-restarts"]


# --- raise -> run waits: a warning only where a task could have waited -----------------------

RCU = 9
NET_RX = 3


def rcu_waits(n: int, wait_ns: int, *, in_ksoftirqd: bool = True, run_ns: int = 10_000, gap_ns: int = 1_000_000, vec: int = NET_RX):
    """n softirqs of vector vec on CPU1, each raised wait_ns before it runs run_ns (in ksoftirqd/1 or a task).

    The first wait began before the window as far as the trace can tell: n runs give n - 1 waits.
    """
    events, t, pid = [], 0, KSOFTIRQD1 if in_ksoftirqd else TASK
    for _ in range(n):
        events += [TraceEvent(t, 1, K.SOFTIRQ_RAISE, TASK, vec), TraceEvent(t + wait_ns, 1, K.SOFTIRQ_ENTRY, pid, vec),
                   TraceEvent(t + wait_ns + run_ns, 1, K.SOFTIRQ_EXIT, pid, vec)]
        t += wait_ns + run_ns + gap_ns
    return aggregate_trace(EventBatch.from_events(events, comms={KSOFTIRQD1: "ksoftirqd/1", TASK: "iperf3"}))


def waits_found(result, busy=None):
    return [f for f in trace_findings(result, cpu_busy_pct=busy) if f.code == "trace-softirq-wait"]


def test_a_long_wait_on_an_idle_cpu_is_information_deferred_to_ksoftirqd():
    # An idle VM: NET_RX raised outside interrupt context waits ~2 ms for ksoftirqd/1 to wake up on
    # a CPU 2 % busy; nobody was running there to be delayed.
    (f,) = waits_found(rcu_waits(200, 2_000_000), {0: 3.0, 1: 2.0})
    assert (f.severity, f.subject) == (Severity.INFO, "NET_RX on CPU1")
    assert f.title == "NET_RX waited p99 2000 us from raise to run on CPU1: deferred to ksoftirqd on an idle CPU, no task waited"
    assert f.metrics["busy_pct"] == 2.0


def test_a_long_wait_outside_ksoftirqd_on_an_idle_cpu_is_information_without_blaming_ksoftirqd():
    (f,) = waits_found(rcu_waits(200, 2_000_000, in_ksoftirqd=False), {1: 2.0})
    assert f.severity == Severity.INFO
    assert f.title.endswith("on CPU1: on an idle CPU, no task waited")


def test_a_long_wait_warns_from_10_percent_busy():
    r = rcu_waits(200, 2_000_000)
    assert [f.severity for f in waits_found(r, {1: 9.9})] == [Severity.INFO]
    (f,) = waits_found(r, {1: 10.0})
    assert f.severity == Severity.WARNING
    assert f.title == "NET_RX waited p99 2000 us from raise to run on CPU1 (100 % of runs in ksoftirqd/1)"
    assert "CPU1 busy 10.0 % of the sample (/proc/stat)" in f.evidence[1]


def test_a_late_rcu_or_sched_run_is_information_even_on_a_busy_cpu():
    # The idle corpus capture: RCU p99 4 ms on CPU1 while another process kept it 16 % busy.
    for vec, name in ((RCU, "RCU"), (7, "SCHED")):
        (f,) = waits_found(rcu_waits(200, 4_000_000, vec=vec), {1: 90.0})
        assert (f.severity, f.subject) == (Severity.INFO, f"{name} on CPU1"), f.title
        assert "housekeeping" in f.title
    assert [f.severity for f in waits_found(rcu_waits(200, 4_000_000), {1: 90.0})] == [Severity.WARNING]


def test_interrupt_time_in_the_trace_makes_the_cpu_busy_whatever_proc_stat_says():
    # 400 us runs every 3.4 ms: 11.8 % of the trace window in softirq, though the whole sample
    # in /proc/stat averaged 5 %; 300 us runs every 3.3 ms (9.1 %) leave it idle.
    busy = rcu_waits(200, 2_000_000, run_ns=400_000)
    assert [f.severity for f in waits_found(busy, {1: 5.0})] == [Severity.WARNING]
    quiet = rcu_waits(200, 2_000_000, run_ns=300_000)
    assert [f.severity for f in waits_found(quiet, {1: 5.0})] == [Severity.INFO]


def test_without_the_cpus_busy_share_a_long_wait_stays_a_warning():
    r = rcu_waits(200, 2_000_000)
    assert [f.severity for f in waits_found(r)] == [Severity.WARNING]
    (f,) = waits_found(r, {0: 1.0})  # /proc/stat knew only CPU0
    assert f.severity == Severity.WARNING and "unknown" in f.evidence[1]


def test_a_wait_finding_needs_100_waits():
    assert [f.severity for f in waits_found(rcu_waits(101, 2_000_000), {1: 50.0})] == [Severity.WARNING]
    assert waits_found(rcu_waits(100, 2_000_000), {1: 50.0}) == []


def test_waits_warn_from_a_p99_of_1_ms():
    assert waits_found(rcu_waits(200, 999_000), {1: 50.0}) == []
    assert [f.severity for f in waits_found(rcu_waits(200, 1_000_000), {1: 50.0})] == [Severity.WARNING]
