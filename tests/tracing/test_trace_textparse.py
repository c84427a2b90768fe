"""The text trace_pipe fallback, on the shared captures from a Firecracker VM."""

from __future__ import annotations

from collections import Counter

import pytest

from irqlab.errors import ParseError
from irqlab.model.events import VECTOR_BY_ID, EventKind
from irqlab.tracing.textparse import parse_lines

VM = "vm-firecracker-2cpu"


def test_two_seconds_of_light_load_parse_line_for_line(shared_fixtures):
    path = shared_fixtures / VM / "trace-sample-lightload/trace_pipe_irq_2s.txt"
    lines = path.read_text().splitlines()
    batch = parse_lines(lines, str(path))
    # trace_sample_stats.txt: "read events" 6089 on cpu0 and 6215 on cpu1, one line each
    assert len(batch) == len(lines) == 6089 + 6215
    per_cpu = Counter(batch.cpu.tolist())
    assert per_cpu == {0: 6089, 1: 6215}
    kinds = Counter(EventKind(k) for k in batch.kind)
    assert kinds[EventKind.SOFTIRQ_ENTRY] == kinds[EventKind.SOFTIRQ_EXIT] > 0
    assert kinds[EventKind.IRQ_ENTRY] == kinds[EventKind.IRQ_EXIT] > 0
    assert batch.irq_names[31] == "virtio0-stats" and batch.irq_names[41] == "virtio3-rx"
    assert batch.comms[0] == "<idle>" and batch.complete
    assert (batch.ts_ns[1:] >= batch.ts_ns[:-1]).all()


def test_microsecond_timestamps_become_nanoseconds():
    line = "          <idle>-0       [000] d.h1.  3080.733371: softirq_raise: vec=3 [action=NET_RX]"
    (e,) = parse_lines([line]).rows()
    assert (e.ts_ns, e.cpu, e.kind, e.pid, e.arg0) == (3080_733_371_000, 0, EventKind.SOFTIRQ_RAISE, 0, 3)


def test_a_lost_marker_makes_the_batch_incomplete(shared_fixtures):
    path = shared_fixtures / VM / "trace_pipe_lost_excerpt.txt"
    batch = parse_lines(path.read_text().splitlines(), str(path))
    assert batch.lost == {0: 2040} and not batch.complete
    assert len(batch) == 120


def test_sched_switch_vectors_tasklets_and_napi_lines():
    lines = [
        "  ksoftirqd/1-22   [001] d..2.  10.000001: sched_switch: prev_comm=ksoftirqd/1 prev_pid=22 "
        "prev_prio=120 prev_state=S ==> next_comm=my app next_pid=99 next_prio=120",
        "  my app-99   [001] d.h1.  10.000002: local_timer_entry: vector=236",
        "  my app-99   [001] ..s1.  10.000003: tasklet_entry: tasklet=0xffff888003c0a000 function=tcp_tasklet_func",
        "  my app-99   [001] ..s1.  10.000004: napi_poll: napi poll on napi struct 00000000a1b2c3d4 "
        "for device eth0 work 3 budget 64",
    ]
    rows = list(parse_lines(lines).rows())
    assert (rows[0].kind, rows[0].arg0, rows[0].arg1, rows[0].arg2) == (EventKind.SCHED_SWITCH, 99, 1, 120)
    assert rows[1].kind == EventKind.VECTOR_ENTRY and VECTOR_BY_ID[rows[1].arg1] == "local_timer"
    batch = parse_lines(lines)
    assert batch.symbols[rows[2].arg0] == "tcp_tasklet_func"
    assert batch.devices[rows[3].arg2] == "eth0" and (rows[3].arg0, rows[3].arg1) == (3, 64)
    assert batch.comms[22] == "ksoftirqd/1" and batch.comms[99] == "my app"


def test_a_garbled_line_is_refused_with_its_line_number():
    with pytest.raises(ParseError, match="trace_pipe: line 2: not a trace_pipe line"):
        parse_lines(["# tracer: nop", "garbage here"])


def test_a_known_event_with_unexpected_arguments_is_refused():
    line = "  x-1   [000] ....  1.000000: softirq_entry: vector=3"
    with pytest.raises(ParseError, match="softirq_entry arguments"):
        parse_lines([line])
