"""Who interrupted a quiet CPU, from tracepoints: IPI senders and call sites, timer, work and IRQ functions. Pure.

The counters of /proc/interrupts and /proc/softirqs say what landed on a CPU; the trace says who
sent it (docs/isolation.md, "Who caused it"). Per quiet CPU, from an EventBatch
(model/events.py) with function addresses already named from /proc/kallsyms:

- function calls: csd:csd_queue_cpu, recorded on the sender, naming the function the target
  runs (`rps_trigger_softirq`, `do_sync_core`, ...) and the call site that queued it; these
  arrive as CAL (x86) or IPI1 (arm64). Counted per queued call: one IPI may run several.
- reschedule IPIs: ipi:ipi_send_cpu / ipi_send_cpumask with no callback (kernel/sched/core.c
  smp_send_reschedule() passes NULL), with the call site (`wakeup_preempt+0x92`, `update_curr`).
  Without csd events (a kernel before 6.6), sends with a callback are listed here too.
- timers: timer:timer_expire_entry (timer-list, TIMER softirq) and hrtimer_expire_entry
  (`tick_nohz_handler` is the tick itself), by function.
- work: workqueue:workqueue_execute_start, by function: a kworker ran it on the CPU.
- IRQs: irq:irq_handler_entry, by IRQ and action name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from irqlab.model.events import EventBatch, EventKind

# The tracepoints `irqlab isolation` enables (tracefs, root). Optional ones a kernel may lack:
# csd:* needs Linux >= 6.6 and CONFIG_SMP; ipi:ipi_send_cpu Linux >= 6.6 too.
ISOLATION_EVENTS: tuple[str, ...] = ("irq:irq_handler_entry", "timer:timer_expire_entry", "timer:hrtimer_expire_entry",
                                     "workqueue:workqueue_execute_start")
ISOLATION_OPTIONAL: tuple[str, ...] = ("ipi:ipi_send_cpu", "ipi:ipi_send_cpumask", "csd:csd_queue_cpu")


@dataclass(frozen=True, slots=True)
class Traced:
    """One source that interrupted a CPU, as the trace names it."""

    kind: str  # "call" (function-call IPI), "resched" (reschedule IPI), "timer", "hrtimer", "work", "irq"
    what: str  # the function run ("rps_trigger_softirq", "tick_nohz_handler"), or "IRQ 38 virtio2-input.0"
    site: str  # where the sender queued it ("generic_exec_single+0x36"); "" for timers, work, IRQs
    senders: tuple[int, ...]  # the CPUs that sent it (IPIs); () otherwise
    count: int
    rate_per_s: float

    @property
    def text(self) -> str:
        """ "rps_trigger_softirq 31.2k/s from CPU0 at generic_exec_single+0x36" (rate formatted by the caller)."""
        who = ("from CPU" if len(self.senders) == 1 else "from CPUs ") + ",".join(map(str, self.senders)) if self.senders else ""
        return " ".join(p for p in (self.what, who, f"at {self.site}" if self.site else "") if p)


@dataclass(frozen=True, slots=True)
class TraceAttribution:
    """Per quiet CPU, what the trace saw interrupt it, most frequent first."""

    window_s: float
    by_cpu: Mapping[int, tuple[Traced, ...]]
    lost: int = 0  # events the kernel dropped: the counts are then lower bounds
    missing: tuple[str, ...] = ()  # optional tracepoints this kernel lacks

    def of(self, cpu: int, *kinds: str) -> tuple[Traced, ...]:
        return tuple(t for t in self.by_cpu.get(cpu, ()) if not kinds or t.kind in kinds)


def _name(symbols: Mapping[int, str], addr: int) -> str:
    return symbols.get(addr) or (f"{addr & 0xFFFFFFFFFFFFFFFF:#x}" if addr else "")


def _targets(batch: EventBatch, kind: EventKind, cpu: int) -> np.ndarray:
    sel: np.ndarray = batch.kind == kind
    if kind is EventKind.IPI_SEND_MASK:
        out: np.ndarray = sel & (cpu < 63) & (((batch.arg0 >> min(cpu, 62)) & 1) == 1)
    else:
        out = sel & (batch.arg0 == cpu)
    return out


def _senders(batch: EventBatch, rows: np.ndarray, key: tuple[int, int], k1: np.ndarray, k2: np.ndarray) -> tuple[int, ...]:
    return tuple(sorted(set(batch.cpu[rows][(k1 == key[0]) & (k2 == key[1])].tolist())))


def _sent_to(batch: EventBatch, cpu: int, kinds: tuple[EventKind, ...], label: str, callbacks: bool) -> list[tuple[Traced, int]]:
    """IPIs or queued calls aimed at cpu, by (function, call site); only those without a callback unless `callbacks`."""
    mask = np.zeros(len(batch), bool)
    for k in kinds:
        mask |= _targets(batch, k, cpu)
    if not callbacks:
        mask &= batch.arg2 == 0
    rows = np.nonzero(mask)[0]
    sites, funcs = batch.arg1[rows], batch.arg2[rows]
    out = []
    for (site, func), n in Counter(zip(sites.tolist(), funcs.tolist())).items():
        what = _name(batch.symbols, func) if func else "reschedule"
        t = Traced(label, what, _name(batch.symbols, site), _senders(batch, rows, (site, func), sites, funcs), n, 0.0)
        out.append((t, n))
    return out


def _ran_on(batch: EventBatch, cpu: int, kind: EventKind, col: str, label: str) -> list[tuple[Traced, int]]:
    sel = (batch.kind == kind) & (batch.cpu == cpu)
    out = []
    for addr, n in Counter(getattr(batch, col)[sel].tolist()).items():
        what = f"IRQ {addr} {batch.irq_names.get(addr, '-')}" if kind is EventKind.IRQ_ENTRY else _name(batch.symbols, addr)
        out.append((Traced(label, what, "", (), n, 0.0), n))
    return out


def attribute(batch: EventBatch, cpus: tuple[int, ...], window_s: float, missing: tuple[str, ...] = ()) -> TraceAttribution:
    """What interrupted each of `cpus` during the batch, by source; rates over window_s."""
    has_csd = bool((batch.kind == EventKind.CSD_QUEUE).any()) or "csd:csd_queue_cpu" not in missing
    by_cpu: dict[int, tuple[Traced, ...]] = {}
    for cpu in cpus:
        found = _sent_to(batch, cpu, (EventKind.CSD_QUEUE,), "call", True)
        found += _sent_to(batch, cpu, (EventKind.IPI_SEND, EventKind.IPI_SEND_MASK), "resched", not has_csd)
        found += _ran_on(batch, cpu, EventKind.TIMER_EXPIRE, "arg0", "timer")
        found += _ran_on(batch, cpu, EventKind.HRTIMER_EXPIRE, "arg2", "hrtimer")
        found += _ran_on(batch, cpu, EventKind.WORK_EXECUTE, "arg0", "work")
        found += _ran_on(batch, cpu, EventKind.IRQ_ENTRY, "arg0", "irq")
        rated = [Traced(t.kind, t.what, t.site, t.senders, n, n / window_s if window_s > 0 else 0.0) for t, n in found]
        by_cpu[cpu] = tuple(sorted(rated, key=lambda t: (-t.count, t.kind, t.what)))
    return TraceAttribution(window_s, by_cpu, sum(batch.lost.values()), tuple(missing))
