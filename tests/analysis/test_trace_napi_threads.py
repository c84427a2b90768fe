"""Threaded NAPI in a trace: napi/DEV-ID kthreads' run time from sched_switch, as thread time."""

from __future__ import annotations

import json

from irqlab.analysis.trace_aggregate import aggregate_trace
from irqlab.model.events import EventBatch, TraceEvent
from irqlab.model.events import EventKind as K
from irqlab.model.trace_result import ThreadTime, TraceResult

US = 1_000
NET_RX = 3
IPERF, NAPI, IDLE = 500, 812, 0
COMMS = {IPERF: "iperf3", NAPI: "napi/veth1-8193", IDLE: "swapper/1"}


def switch(t_us: float, prev: int, nxt: int, cpu: int = 1, prio: int = 120) -> TraceEvent:
    """sched:sched_switch on cpu: common_pid is prev, arg0 next_pid, arg2 next_prio."""
    return TraceEvent(int(t_us * US), cpu, K.SCHED_SWITCH, prev, nxt, 0, prio)


def batch(events, start_us: float = 0, end_us: float = 1000) -> EventBatch:
    return EventBatch.from_events(sorted(events, key=lambda e: e.ts_ns), comms=COMMS,
                                  start_ns=int(start_us * US), end_ns=int(end_us * US), source="tracefs")


def test_a_napi_thread_runs_from_its_switch_in_to_the_next_switch_on_that_cpu():
    r = aggregate_trace(batch([
        switch(100, IDLE, NAPI, prio=120), switch(400, NAPI, IPERF),
        switch(500, IPERF, NAPI, prio=120), switch(600, NAPI, IDLE),
    ]))
    (t,) = r.threads
    assert (t.pid, t.comm, t.cpu, t.run_ns, t.runs) == (NAPI, "napi/veth1-8193", 1, 400 * US, 2)
    assert (t.device, t.napi_id, t.prio, t.source) == ("veth1", 8193, 120, "sched_switch")


def test_runs_cut_by_the_window_count_up_to_its_edges_and_stay_on_their_cpu():
    # On CPU0 the thread was already running when the window began; on CPU1 it still runs at the end.
    r = aggregate_trace(batch([
        switch(50, NAPI, IPERF, cpu=0),
        switch(700, IDLE, NAPI, cpu=1, prio=49),  # SCHED_FIFO 50: prio 99 - 50
    ], start_us=0, end_us=1000))
    by_cpu = {t.cpu: t for t in r.threads}
    assert by_cpu[0].run_ns == 50 * US and by_cpu[0].runs == 0
    assert by_cpu[1].run_ns == 300 * US and by_cpu[1].runs == 1 and by_cpu[1].prio == 49


def test_other_threads_and_softirqs_are_not_napi_thread_time():
    r = aggregate_trace(batch([
        switch(0, IDLE, IPERF), TraceEvent(10 * US, 1, K.SOFTIRQ_ENTRY, IPERF, NET_RX),
        TraceEvent(30 * US, 1, K.SOFTIRQ_EXIT, IPERF, NET_RX), switch(40, IPERF, IDLE),
    ]))
    assert r.threads == ()
    assert sum(h.gross[1].sum_ns for h in r.softirqs if h.name == "NET_RX") == 20 * US


def test_a_cpu_filter_keeps_only_that_cpus_runs():
    events = [switch(100, IDLE, NAPI, cpu=0), switch(200, NAPI, IDLE, cpu=0),
              switch(300, IDLE, NAPI, cpu=1), switch(350, NAPI, IDLE, cpu=1)]
    r = aggregate_trace(batch(events), cpus=(1,))
    assert [(t.cpu, t.run_ns) for t in r.threads] == [(1, 50 * US)]


def test_thread_times_survive_the_saved_evidence_round_trip_and_old_evidence_has_none():
    r = aggregate_trace(batch([switch(100, IDLE, NAPI), switch(400, NAPI, IDLE)]))
    d = json.loads(json.dumps(r.to_dict()))
    assert TraceResult.from_dict(d).threads == r.threads
    del d["threads"]  # evidence saved before threaded NAPI was traced
    assert TraceResult.from_dict(d).threads == ()


def test_a_comm_cut_short_names_no_device():
    assert ThreadTime(1, "napi/enp59s0f0n", 0, 0, 0).device == ""
    assert ThreadTime(1, "napi/enp59s0f0n", 0, 0, 0).napi_id is None
    assert ThreadTime(1, "napi/eth-0-8200", 0, 0, 0).device == "eth-0"


def _traced() -> TraceResult:
    return aggregate_trace(batch([
        switch(100, IDLE, NAPI, prio=49), TraceEvent(150 * US, 1, K.SOFTIRQ_ENTRY, NAPI, NET_RX),
        TraceEvent(160 * US, 1, K.SOFTIRQ_EXIT, NAPI, NET_RX), switch(510, NAPI, IDLE),
    ], end_us=1000))


def test_the_text_report_lists_the_napi_thread_with_its_device_cpu_share_priority_and_net_rx_beside():
    from irqlab.outputs.trace_text import render_trace

    lines = render_trace(_traced()).splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("NAPI threads"))
    assert "thread time, not NET_RX softirq time" in lines[at]
    assert lines[at + 1].split() == ["THREAD", "PID", "DEVICE", "CPU", "RUNS", "RUN_ms", "%CPU", "PRIO", "NET_RX_ms"]
    assert lines[at + 2].split() == ["napi/veth1-8193", "812", "veth1", "CPU1", "1", "0.41", "41.0", "rt", "50", "0.01"]


def test_the_text_report_has_no_napi_section_when_no_napi_thread_ran():
    from irqlab.outputs.trace_text import render_trace

    r = aggregate_trace(batch([switch(0, IDLE, IPERF), switch(40, IPERF, IDLE)]))
    assert "NAPI threads" not in render_trace(r)


def test_the_json_names_each_napi_thread_with_its_run_time_and_share():
    from irqlab.outputs.trace_json import trace_json

    (t,) = trace_json(_traced())["napi_threads"]
    assert t == {"pid": NAPI, "comm": "napi/veth1-8193", "device": "veth1", "napi_id": 8193, "cpu": 1, "runs": 1,
                 "run_ns": 410 * US, "cpu_share": 0.41, "prio": 49, "priority": "rt 50", "source": "sched_switch"}


def _task(run_ns: int, comm: str = "napi/irqlab1767v0-289", last_cpu: int = 1, policy: str = "other", rt: int = 0):
    from irqlab.model.snapshot import TaskInfo

    return TaskInfo(pid=NAPI, comm=comm, kind="napi", cpu=None, irq=None, utime_ticks=0, stime_ticks=0, run_ns=run_ns,
                    policy=policy, rt_priority=rt, nice=0, allowed_cpus=(0, 1), last_cpu=last_cpu)


def test_sched_switch_cuts_the_comm_at_15_characters_and_proc_gives_the_whole_name_back():
    from irqlab.analysis.trace_aggregate import with_napi_tasks

    cut = {IDLE: "swapper/1", NAPI: "napi/irqlab1767"}  # TASK_COMM_LEN 16 in the event
    r = aggregate_trace(EventBatch.from_events([switch(100, IDLE, NAPI), switch(400, NAPI, IDLE)], comms=cut,
                                               start_ns=0, end_ns=1000 * US, source="tracefs"))
    assert r.threads[0].device == ""
    (t,) = with_napi_tasks(r, (), (_task(0),)).threads
    assert (t.comm, t.device, t.napi_id, t.run_ns, t.source) == ("napi/irqlab1767v0-289", "irqlab1767v0", 289, 300 * US, "sched_switch")


def test_the_bpf_backend_gets_napi_thread_time_from_schedstat_on_the_cpu_it_last_ran_on():
    from irqlab.analysis.trace_aggregate import with_napi_tasks

    bpf = TraceResult(10**9, (0, 1), {}, {}, (), (), (), {}, {}, {}, source="bpf")
    (t,) = with_napi_tasks(bpf, (_task(5_000_000),), (_task(285_000_000, policy="fifo", rt=50),)).threads
    assert (t.cpu, t.run_ns, t.runs, t.prio, t.priority, t.source) == (1, 280_000_000, 0, 49, "rt 50", "schedstat")
    only_cpu0 = TraceResult(10**9, (0,), {}, {}, (), (), (), {}, {}, {}, source="bpf")
    assert with_napi_tasks(only_cpu0, (_task(5),), (_task(9),)).threads == ()  # -C 0: it ran on CPU1
    assert with_napi_tasks(bpf, (_task(5),), (_task(5),)).threads == ()  # did not run
