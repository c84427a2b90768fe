"""Trace events of the interrupt path, as the tracer decodes them and the simulator emits them.

A trace is a columnar EventBatch (numpy arrays, one row per event) because real traces run at
millions of events per second; TraceEvent is the one-row view for tests and printing. The
tracefs reader, the BPF backend and the simulator all produce EventBatch, so the aggregation in
analysis/ runs unchanged on any of them.

Columns by kind (arg0, arg1, arg2); `pid` is always the task that was current on that CPU
(the tracepoint's common_pid), which tells whether a softirq ran in ksoftirqd/N:

| kind           | tracepoint (v6.18)                          | arg0          | arg1            | arg2 |
|----------------|---------------------------------------------|---------------|-----------------|------|
| IRQ_ENTRY      | irq:irq_handler_entry                       | irq           | -               | -    |
| IRQ_EXIT       | irq:irq_handler_exit                        | irq           | ret (IRQ_HANDLED=1, IRQ_NONE=0, IRQ_WAKE_THREAD=2) | - |
| SOFTIRQ_RAISE  | irq:softirq_raise                           | vec           | -               | -    |
| SOFTIRQ_ENTRY  | irq:softirq_entry                           | vec           | -               | -    |
| SOFTIRQ_EXIT   | irq:softirq_exit                            | vec           | -               | -    |
| TASKLET_ENTRY  | irq:tasklet_entry (Linux >= 5.13)           | func address  | -               | -    |
| TASKLET_EXIT   | irq:tasklet_exit                            | func address  | -               | -    |
| VECTOR_ENTRY   | irq_vectors:*_entry (x86 system vectors)    | vector number | VECTOR_* id     | -    |
| VECTOR_EXIT    | irq_vectors:*_exit                          | vector number | VECTOR_* id     | -    |
| SCHED_SWITCH   | sched:sched_switch                          | next_pid      | prev_state      | next_prio |
| SCHED_WAKEUP   | sched:sched_waking / sched_wakeup           | woken pid     | target cpu      | prio |
| NAPI_POLL      | napi:napi_poll                              | work          | budget          | device index in `devices` |
| TIMER_WAKE     | simulator / probe: a measured task woke     | latency ns    | deadline ns     | -    |
| HRTIMER_EXPIRE | timer:hrtimer_expire_entry                  | hrtimer address | now (base clock ns) | function address |
| BH_WORK_ENTRY  | workqueue:workqueue_execute_start in softirq context (a BH workqueue, Linux >= 6.9) | function address | work address | - |
| BH_WORK_EXIT   | workqueue:workqueue_execute_end in softirq context | function address | work address | - |
| IPI_SEND       | ipi:ipi_send_cpu (on the sender's CPU)      | target cpu    | callsite address | callback address (0: reschedule) |
| IPI_SEND_MASK  | ipi:ipi_send_cpumask (on the sender's CPU)  | target CPUs 0-62 as bits | callsite address | callback address |
| WORK_EXECUTE   | workqueue:workqueue_execute_start           | function address | work address | - |
| TIMER_EXPIRE   | timer:timer_expire_entry                    | function address | timer address | - |
| CSD_QUEUE      | csd:csd_queue_cpu (on the sender's CPU)     | target cpu    | callsite address | function address |
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypedDict, Unpack

import numpy as np


class EventKind(IntEnum):
    IRQ_ENTRY = 1
    IRQ_EXIT = 2
    SOFTIRQ_RAISE = 3
    SOFTIRQ_ENTRY = 4
    SOFTIRQ_EXIT = 5
    TASKLET_ENTRY = 6
    TASKLET_EXIT = 7
    VECTOR_ENTRY = 8
    VECTOR_EXIT = 9
    SCHED_SWITCH = 10
    SCHED_WAKEUP = 11
    NAPI_POLL = 12
    TIMER_WAKE = 13
    HRTIMER_EXPIRE = 14
    IPI_SEND = 15
    IPI_SEND_MASK = 16
    WORK_EXECUTE = 17
    TIMER_EXPIRE = 18
    # Work items of a BH workqueue (WQ_BH, Linux >= 6.9, commit 4cb1ef64609f): they run in softirq
    # context, inside TASKLET or HI, where tasklets ran before (kernel/workqueue.c bh_worker()).
    BH_WORK_ENTRY = 19
    BH_WORK_EXIT = 20
    CSD_QUEUE = 21


# x86 system vectors seen through irq_vectors:* (arch/x86/include/asm/trace/irq_vectors.h);
# the names match the /proc/interrupts rows they are counted in.
VECTOR_NAMES: dict[str, str] = {
    "local_timer": "LOC",
    "reschedule": "RES",
    "call_function": "CAL",
    "call_function_single": "CAL",
    "irq_work": "IWI",
    "spurious_apic": "SPU",
    "error_apic": "ERR",
    "thermal_apic": "TRM",
    "threshold_apic": "THR",
    "deferred_error_apic": "DFR",
    "x86_platform_ipi": "PLT",
    "reboot": "RBT",
}
# arg1 of VECTOR_ENTRY/EXIT: the position of the tracepoint's base name in VECTOR_NAMES
# (dicts keep insertion order), so VECTOR_BY_ID[arg1] -> "local_timer", VECTOR_NAMES[...] -> "LOC".
VECTOR_BY_ID: tuple[str, ...] = tuple(VECTOR_NAMES)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One event, for tests and printing; EventBatch is the bulk form."""

    ts_ns: int
    cpu: int
    kind: EventKind
    pid: int = 0
    arg0: int = 0
    arg1: int = 0
    arg2: int = 0


COLUMNS = ("ts_ns", "cpu", "kind", "pid", "arg0", "arg1", "arg2")
DTYPES = {"ts_ns": np.int64, "cpu": np.int32, "kind": np.int16, "pid": np.int32, "arg0": np.int64, "arg1": np.int64, "arg2": np.int64}


class BatchMeta(TypedDict, total=False):
    """EventBatch's fields besides the columns, as keyword arguments."""

    irq_names: dict[int, str]
    comms: dict[int, str]
    symbols: dict[int, str]
    devices: tuple[str, ...]
    lost: dict[int, int]
    start_ns: int
    end_ns: int
    source: str


@dataclass(frozen=True, eq=False, slots=True)
class EventBatch:
    """Events in time order (per CPU at least), with the names they refer to and what was lost."""

    ts_ns: np.ndarray
    cpu: np.ndarray
    kind: np.ndarray
    pid: np.ndarray
    arg0: np.ndarray
    arg1: np.ndarray
    arg2: np.ndarray
    irq_names: dict[int, str] = field(default_factory=dict)  # irq -> action name
    comms: dict[int, str] = field(default_factory=dict)  # pid -> comm
    symbols: dict[int, str] = field(default_factory=dict)  # tasklet, timer, work, IPI address -> symbol
    devices: tuple[str, ...] = ()  # NAPI device names, indexed by arg2
    lost: dict[int, int] = field(default_factory=dict)  # cpu -> events the kernel dropped
    start_ns: int = 0  # the window the batch covers, on the trace clock
    end_ns: int = 0
    source: str = ""  # "tracefs", "bpf", "sim"

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    @property
    def complete(self) -> bool:
        """False when the kernel reported lost events: never present such a result as whole."""
        return not any(self.lost.values())

    @property
    def window_ns(self) -> int:
        return self.end_ns - self.start_ns

    def rows(self) -> Iterator[TraceEvent]:
        for i in range(len(self)):
            yield TraceEvent(
                int(self.ts_ns[i]), int(self.cpu[i]), EventKind(int(self.kind[i])), int(self.pid[i]),
                int(self.arg0[i]), int(self.arg1[i]), int(self.arg2[i]),
            )

    def select(self, mask: np.ndarray) -> EventBatch:
        """The events where mask is true, with the same names and window."""
        cols = {c: getattr(self, c)[mask] for c in COLUMNS}
        return EventBatch(**cols, irq_names=self.irq_names, comms=self.comms, symbols=self.symbols,
                          devices=self.devices, lost=self.lost, start_ns=self.start_ns, end_ns=self.end_ns,
                          source=self.source)

    @classmethod
    def from_events(cls, events: Iterable[TraceEvent], **meta: Unpack[BatchMeta]) -> EventBatch:
        evs = list(events)
        cols = {c: np.array([getattr(e, c) for e in evs], dtype=DTYPES[c]) for c in COLUMNS}
        if evs and "start_ns" not in meta:
            meta["start_ns"] = min(e.ts_ns for e in evs)
            meta["end_ns"] = max(e.ts_ns for e in evs)
        return cls.from_columns(cols, **meta)

    @classmethod
    def empty(cls, **meta: Unpack[BatchMeta]) -> EventBatch:
        return cls.from_columns({c: np.zeros(0, dtype=DTYPES[c]) for c in COLUMNS}, **meta)

    @classmethod
    def from_columns(cls, cols: Mapping[str, np.ndarray], **meta: Unpack[BatchMeta]) -> EventBatch:
        """A batch from one array per name in COLUMNS."""
        return cls(cols["ts_ns"], cols["cpu"], cols["kind"], cols["pid"], cols["arg0"], cols["arg1"], cols["arg2"], **meta)

    @classmethod
    def concat(cls, batches: list[EventBatch]) -> EventBatch:
        """Join batches (e.g. per-CPU reads or successive intervals), sorted by time, stable."""
        if not batches:
            return cls.empty()
        cols = {c: np.concatenate([getattr(b, c) for b in batches]) for c in COLUMNS}
        order = np.argsort(cols["ts_ns"], kind="stable")
        cols = {c: v[order] for c, v in cols.items()}
        lost: dict[int, int] = {}
        names: dict[int, str] = {}
        comms: dict[int, str] = {}
        syms: dict[int, str] = {}
        for b in batches:
            for cpu, n in b.lost.items():
                lost[cpu] = lost.get(cpu, 0) + n
            names.update(b.irq_names)
            comms.update(b.comms)
            syms.update(b.symbols)
        devices = batches[0].devices
        return cls(**cols, irq_names=names, comms=comms, symbols=syms, devices=devices, lost=lost,
                   start_ns=min(b.start_ns for b in batches), end_ns=max(b.end_ns for b in batches),
                   source=batches[0].source)
