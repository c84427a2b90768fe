"""Fallback: parse the text `trace_pipe` (default trace output) into an EventBatch.

Slower than the raw reader and only microsecond timestamps, but it needs no layouts. Lines look
like (kernel/trace/trace_output.c, trace_print_context + lat flags, v6.18):

    iperf3-31418   [001] D..1.  3080.733332: softirq_raise: vec=3 [action=NET_RX]
    CPU:0 [LOST 2040 EVENTS]

The LOST line is printed by print_trace_line when the ring buffer reports missed events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from irqlab.errors import ParseError
from irqlab.model.events import EventBatch, EventKind, TraceEvent
from irqlab.tracing.decode import SPECS, VECTOR_IDS

_LINE = re.compile(
    r"^\s*(?P<comm>.+)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s:]{4,6})\s+)?(?P<sec>\d+)\.(?P<frac>\d+):\s+(?P<event>\w+):\s?(?P<args>.*)$")
_LOST = re.compile(r"^CPU:(?P<cpu>\d+) \[LOST (?P<n>\d+) EVENTS\]\s*$")
_KV = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|\s+==>|\s+\[|$)")
_NAPI = re.compile(r"for device (?P<dev>\S+) work (?P<work>-?\d+) budget (?P<budget>-?\d+)")
# prev_state letters as __print_flags prints them (include/trace/events/sched.h, v6.18).
PREEMPTED = 0x100
_STATE = {"R": 0, "S": 1, "D": 2, "T": 4, "t": 8, "X": 16, "Z": 32, "P": 64, "I": 128}
_BY_NAME = {q.split(":", 1)[1]: spec for q, spec in SPECS.items()}


def _num(text: str) -> int:
    return int(text, 0)


class _Names:
    """Names the text shows in place of numbers: comms, IRQ actions, tasklet functions, devices."""

    def __init__(self) -> None:
        self.irq: dict[int, str] = {}
        self.comms: dict[int, str] = {}
        self.funcs: dict[str, int] = {}  # text gives a symbol, not an address: synthetic ids
        self.devices: list[str] = []

    def func_id(self, name: str) -> int:
        # Negative ids never collide with a real kernel address read as int64 (they are too small).
        return self.funcs.setdefault(name, -(len(self.funcs) + 1))


def _args(kind: EventKind, event: str, args: str, names: _Names) -> tuple[int, int, int]:
    kv = dict(_KV.findall(args))
    if kind in (EventKind.SOFTIRQ_RAISE, EventKind.SOFTIRQ_ENTRY, EventKind.SOFTIRQ_EXIT):
        return _num(kv["vec"]), 0, 0
    if kind is EventKind.IRQ_ENTRY:
        irq = _num(kv["irq"])
        names.irq.setdefault(irq, kv.get("name", ""))
        return irq, 0, 0
    if kind is EventKind.IRQ_EXIT:
        # print fmt: REC->ret ? "handled" : "unhandled"
        return _num(kv["irq"]), 1 if kv["ret"] == "handled" else 0, 0
    if kind in (EventKind.TASKLET_ENTRY, EventKind.TASKLET_EXIT):
        return names.func_id(kv["function"]), 0, 0
    if kind in (EventKind.VECTOR_ENTRY, EventKind.VECTOR_EXIT):
        base = event.rsplit("_", 1)[0]
        return _num(kv["vector"]), VECTOR_IDS[base], 0
    if kind is EventKind.SCHED_SWITCH:
        state = kv["prev_state"]
        bits = sum(_STATE.get(ch, 0) for ch in state.rstrip("+").split("|"))
        if state.endswith("+"):  # preempted: TASK_REPORT_MAX, 0x100 in the v6.18 print fmt
            bits |= PREEMPTED
        names.comms.setdefault(_num(kv["prev_pid"]), kv["prev_comm"])
        names.comms.setdefault(_num(kv["next_pid"]), kv["next_comm"])
        return _num(kv["next_pid"]), bits, _num(kv["next_prio"])
    if kind is EventKind.SCHED_WAKEUP:
        names.comms.setdefault(_num(kv["pid"]), kv.get("comm", ""))
        return _num(kv["pid"]), int(kv["target_cpu"], 10), _num(kv["prio"])
    if kind is EventKind.NAPI_POLL:
        m = _NAPI.search(args)
        if m is None:
            raise KeyError("device")
        if m["dev"] not in names.devices:
            names.devices.append(m["dev"])
        return int(m["work"]), int(m["budget"]), names.devices.index(m["dev"])
    raise KeyError(event)


def parse_lines(lines: Iterable[str], path: str = "trace_pipe", source: str = "tracefs") -> EventBatch:
    """Parse trace_pipe text; unknown events are skipped, malformed known ones raise ParseError."""
    events: list[TraceEvent] = []
    lost: dict[int, int] = {}
    names = _Names()
    for lineno, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        m = _LOST.match(line)
        if m:
            lost[int(m["cpu"])] = lost.get(int(m["cpu"]), 0) + int(m["n"])
            continue
        m = _LINE.match(line)
        if m is None:
            raise ParseError(path, lineno, line, "not a trace_pipe line")
        spec = _BY_NAME.get(m["event"])
        if spec is None:
            continue
        kind = spec[0]
        try:
            a0, a1, a2 = _args(kind, m["event"], m["args"], names)
        except (KeyError, ValueError):
            raise ParseError(path, lineno, m["args"], f"{m['event']} arguments not as the kernel prints them") from None
        frac = m["frac"]
        ts = int(m["sec"]) * 1_000_000_000 + int(frac) * 10 ** (9 - len(frac))
        pid = int(m["pid"])
        names.comms.setdefault(pid, m["comm"].strip())
        events.append(TraceEvent(ts, int(m["cpu"]), kind, pid, a0, a1, a2))
    events.sort(key=lambda e: e.ts_ns)
    symbols = {ident: name for name, ident in names.funcs.items()}
    return EventBatch.from_events(events, irq_names=names.irq, comms=names.comms, symbols=symbols,
                                  devices=tuple(names.devices), lost=lost, source=source)
