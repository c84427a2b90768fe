"""Who interrupted a quiet CPU, from tracepoints (ipi, csd, timer, workqueue, irq), and the offenders it names.

The fixture tests/fixtures/tracing/isolation is a real capture of this VM under
load.sh -m udp -n 1 --rps 2 --pin cpu0 (tests/fixtures/tracing/capture_isolation.py), named
with the kallsyms lines it needs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from netbuilders import Machine
from test_isolation import report, rps_onto_cpu1

from irqlab.analysis.isolation_trace import TraceAttribution, Traced, attribute
from irqlab.model.events import EventBatch, EventKind, TraceEvent
from irqlab.tracing.rawtrace import read_capture
from irqlab.tracing.symbols import Kallsyms


def captured(fixtures) -> EventBatch:
    d = fixtures / "tracing/isolation"
    b = read_capture(d).decode()
    syms = Kallsyms.parse((d / "kallsyms").read_text())
    return dataclasses.replace(b, symbols=syms.lookup(int(x) for col in (b.arg0, b.arg1, b.arg2) for x in col))


def test_the_captured_cpumask_and_csd_events_decode_with_their_callsite_and_function(fixtures):
    b = captured(fixtures)
    csd = b.select(b.kind == EventKind.CSD_QUEUE)
    assert len(csd) > 0 and set(csd.arg0.tolist()) <= {0, 1}
    assert {b.symbols[int(f)] for f in csd.arg2} == {"rps_trigger_softirq", "do_sync_core"}
    assert (b.kind == EventKind.WORK_EXECUTE).any() and (b.kind == EventKind.TIMER_EXPIRE).any()


def test_rps_function_calls_onto_cpu1_are_named_with_their_sender_and_call_site(fixtures):
    b = captured(fixtures)
    attr = attribute(b, (1,), 0.01)
    first = attr.of(1)[0]
    assert (first.kind, first.what, first.senders) == ("call", "rps_trigger_softirq", (0,))
    assert first.site.startswith("generic_exec_single+0x")
    assert first.text == f"rps_trigger_softirq from CPU0 at {first.site}"
    assert [t.what for t in attr.of(1, "work")] == ["blk_mq_run_work_fn"]
    assert {t.what for t in attr.of(1, "timer")} == {"process_timeout", "tcp_orphan_update"}
    assert [t.what for t in attr.of(1, "hrtimer")] == ["tick_nohz_handler"]


def test_calls_sent_to_the_other_cpu_are_not_counted_on_this_one(fixtures):
    attr = attribute(captured(fixtures), (0, 1), 0.01)
    assert "do_sync_core" in [t.what for t in attr.of(0, "call")] and "do_sync_core" not in [t.what for t in attr.of(1, "call")]


def test_a_cpumask_send_counts_for_each_cpu_in_its_mask_and_a_reschedule_has_no_callback():
    evs = [TraceEvent(1, 0, EventKind.IPI_SEND_MASK, 10, 0b110, 0x100, 0), TraceEvent(2, 0, EventKind.IPI_SEND, 10, 1, 0x200, 0),
           TraceEvent(3, 0, EventKind.IPI_SEND, 10, 3, 0x200, 0)]
    b = dataclasses.replace(EventBatch.from_events(evs), symbols={0x100: "sched_ttwu_pending+0x1", 0x200: "resched_curr+0x5"})
    attr = attribute(b, (1, 2, 3), 1.0)
    assert [(t.kind, t.what, t.site, t.senders, t.count) for t in attr.of(1)] == [
        ("resched", "reschedule", "sched_ttwu_pending+0x1", (0,), 1), ("resched", "reschedule", "resched_curr+0x5", (0,), 1)]
    assert [t.site for t in attr.of(2)] == ["sched_ttwu_pending+0x1"] and [t.site for t in attr.of(3)] == ["resched_curr+0x5"]


def test_the_rps_net_rx_offender_names_the_traced_function_and_keeps_its_fix(fixtures):
    attr = attribute(captured(fixtures), (1,), 0.01)
    rep = report(rps_onto_cpu1(), trace=attr)
    first = rep.cpus[0].offenders[0]
    assert first.name == "NET_RX" and first.cause.startswith("NET_RX via RPS: rps_cpus=2 on veth1 rx-0 (netns x)")
    assert "traced: rps_trigger_softirq from CPU0 at generic_exec_single+0x" in first.cause
    assert first.action is not None and first.action.new == "1"


def test_a_function_call_ipi_rps_does_not_explain_is_named_by_its_function_with_its_fix():
    m = Machine(irqs=[("CAL", "Function call interrupts", [0, 30])])
    attr = TraceAttribution(1.0, {1: (Traced("call", "do_sync_core", "on_each_cpu_cond_mask+0x20", (0,), 30, 30.0),)})
    cal = report(m, trace=attr).cpus[0].offenders[0]
    assert cal.cause.endswith("traced: do_sync_core from CPU0 at on_each_cpu_cond_mask+0x20 30/s (kernel text patching "
                              "(static keys, ftrace, kprobes, BPF trampolines): every CPU serialises)")
    assert cal.hint == "do not toggle static keys, ftrace or BPF programs while the workload runs"


def test_the_tick_is_named_by_its_hrtimer_and_work_that_ran_there_is_an_offender_with_a_fix():
    m = Machine(irqs=[("LOC", "Local timer interrupts", [250, 250])])
    attr = TraceAttribution(1.0, {1: (Traced("hrtimer", "tick_nohz_handler", "", (), 250, 250.0),
                                      Traced("work", "vmstat_update", "", (), 1, 1.0),
                                      Traced("work", "some_driver_fn", "", (), 0, 0.5))})
    cpu = report(m, trace=attr).cpus[0]
    loc = cpu.offenders[0]
    assert "traced: tick_nohz_handler 250/s (the scheduler tick" in loc.cause and "nohz_full=1" in loc.hint
    work = [o for o in cpu.offenders if o.kind == "work"]
    assert [(o.name, o.rate_per_s) for o in work] == [("vmstat_update", 1.0)] and "vm.stat_interval" in work[0].hint
    assert [o.name for o in cpu.tolerated] == ["some_driver_fn"]
    assert "echo 1 > /sys/devices/virtual/workqueue/cpumask" in cpu.tolerated[0].hint


def test_without_a_trace_the_report_says_why_and_names_no_traced_source():
    rep = report(rps_onto_cpu1(), trace=None)
    assert rep.trace is None and "traced:" not in rep.cpus[0].offenders[0].cause


def test_lost_events_are_counted_so_the_rates_read_as_lower_bounds():
    b = dataclasses.replace(EventBatch.from_events([TraceEvent(1, 1, EventKind.WORK_EXECUTE, 5, 0x10, 0, 0)]), lost={1: 7})
    assert attribute(b, (1,), 1.0).lost == 7
    assert np.isclose(attribute(b, (1,), 2.0).of(1)[0].rate_per_s, 0.5)


def test_a_traced_call_irqlab_has_no_row_for_does_not_keep_the_run_as_root_hint():
    m = Machine(irqs=[("CAL", "Function call interrupts", [0, 30])])
    attr = TraceAttribution(1.0, {1: (Traced("call", "some_unknown_fn", "caller+0x10", (0,), 30, 30.0),)})
    cal = report(m, trace=attr).cpus[0].offenders[0]
    assert "as root" not in cal.hint and cal.hint.startswith("the function above runs here at CPU0's request (caller+0x10)")
    attr = TraceAttribution(1.0, {1: (Traced("call", "sched_ttwu_pending", "ttwu_queue_wakelist+0x11d", (0,), 30, 30.0),)})
    assert "remote wake-ups" in report(m, trace=attr).cpus[0].offenders[0].cause


def test_every_event_kind_has_a_value_of_its_own():
    # An IntEnum silently makes a second name with a taken value an alias of the first: the csd
    # events would then be read as BH work and the other way round.
    assert len({k.value for k in EventKind.__members__.values()}) == len(EventKind.__members__)
