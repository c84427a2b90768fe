"""Timer wake-up latency: statistics per CPU, budget verdicts, and what caused each breach.

Pure: samples and trace events in, values out. The probe (irqlab.probe) measures; the cli
hands its samples and the tracing session's EventBatch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from irqlab.analysis.latency_budget import BudgetClass
from irqlab.model.events import VECTOR_BY_ID, VECTOR_NAMES, EventBatch, EventKind
from irqlab.model.histogram import Histogram, Stats
from irqlab.model.snapshot import TaskInfo
from irqlab.model.vectors import SOFTIRQ_NAMES

DEFAULT_LIMIT_NS = 1_000_000  # linear 1 us buckets up to 1 ms, then the overflow row

# --- statistics --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class CpuLatency:
    """One CPU's latency histogram and its summary (cpu None: all CPUs together)."""

    cpu: int | None
    hist: Histogram
    stats: Stats
    missed: int = 0  # deadlines skipped because a wake-up overran whole periods


@dataclass(frozen=True, eq=False, slots=True)
class LatencyReport:
    per_cpu: tuple[CpuLatency, ...]
    overall: CpuLatency


def summarize(samples_ns: Mapping[int, np.ndarray], missed: Mapping[int, int] | None = None,
              bucket_ns: int = 1_000, limit_ns: int = DEFAULT_LIMIT_NS) -> LatencyReport:
    """Histograms and statistics per CPU (in CPU order) and merged over all of them."""
    missed = missed or {}
    rows = []
    total = Histogram(bucket_ns, limit_ns)
    for cpu in sorted(samples_ns):
        h = Histogram(bucket_ns, limit_ns)
        h.add_many(samples_ns[cpu])
        total.merge(h)
        rows.append(CpuLatency(cpu, h, h.stats(), int(missed.get(cpu, 0))))
    overall = CpuLatency(None, total, total.stats(), sum(int(v) for v in missed.values()))
    return LatencyReport(tuple(rows), overall)


# --- budgets -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    metric: str  # "p99", "p99.9", "max"
    limit_ns: int
    measured_ns: int | None
    ok: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """PASS/FAIL of one budget class, with each limit checked."""

    budget: BudgetClass
    stats: Stats
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)


_METRIC = {"p99": "p99_ns", "p99.9": "p999_ns", "max": "max_ns"}


def evaluate(budget: BudgetClass, stats: Stats) -> Verdict:
    """Check each limit of the class against the measured statistics; no samples is a FAIL.

    Percentiles are bucket upper edges (model/histogram.py), so "p99 <= limit" never passes a
    class that a finer measurement would fail.
    """
    checks = []
    for metric, limit in budget.limits():
        got = getattr(stats, _METRIC[metric])
        checks.append(Check(metric, limit, got, got is not None and got <= limit))
    return Verdict(budget, stats, tuple(checks))


# --- IRQ threads -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadNote:
    """How an irq/N-name thread ranks against the probe on a CPU they share."""

    task: TaskInfo
    cpus: tuple[int, ...]  # probe CPUs the thread may run on
    relation: str  # "above" (its handler delays the probe), "equal", "below" (the probe delays it)


def irq_thread_notes(tasks: Sequence[TaskInfo], probe_cpus: Sequence[int], policy: str,
                     priority: int) -> tuple[ThreadNote, ...]:
    """Rank each threaded handler that shares a CPU with the probe against the probe.

    A SCHED_OTHER probe ranks below every real-time thread (include/linux/sched/rt.h, rt_prio(),
    v6.18: any RT priority preempts the fair class).
    """
    mine = priority if policy in ("fifo", "rr") else 0
    out = []
    for t in tasks:
        if t.kind != "irq":
            continue
        allowed = set(t.allowed_cpus) if t.allowed_cpus is not None else set(probe_cpus)
        shared = tuple(c for c in probe_cpus if c in allowed)
        if not shared:
            continue
        theirs = t.rt_priority if t.policy in ("fifo", "rr") else 0
        relation = "above" if theirs > mine else "equal" if theirs == mine else "below"
        out.append(ThreadNote(t, shared, relation))
    return tuple(out)


# --- attribution -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breach:
    """A wake-up later than the threshold: the probe `pid` on `cpu` woke at woke_ns."""

    cpu: int
    pid: int
    deadline_ns: int
    woke_ns: int

    @property
    def latency_ns(self) -> int:
        return self.woke_ns - self.deadline_ns


@dataclass(frozen=True, slots=True)
class Part:
    """Time of the breach window spent in one context, exclusive of what nested in it."""

    kind: str  # "irq", "vector", "softirq", "tasklet", "task", "idle", "probe", "unknown"
    label: str  # "IRQ 41 virtio3-rx", "NET_RX softirq in ksoftirqd/1", "task kworker/1:2 (pid 77)"
    duration_ns: int
    count: int  # how many separate runs of it overlapped the window


@dataclass(frozen=True, slots=True)
class Explanation:
    """What ran on the probe's CPU between its deadline and its wake-up."""

    breach: Breach
    parts: tuple[Part, ...]  # largest first
    timer_irq_ns: int | None  # deadline -> entry of the interrupt that woke the probe
    woken_ns: int | None  # sched_waking of the probe, on the trace clock
    switched_in_ns: int | None  # sched_switch to the probe
    complete: bool  # False: the trace lost events on this CPU or does not cover the window
    # With the probe's hrtimer expiry traced (--kernel), the kernel figure of analysis/wakeup.py
    # from the same events: expiry = the timer:hrtimer_expire_entry just before the probe's waking.
    expiry_ns: int | None = None
    kernel_charged_ns: int | None = None  # the parts' time from the deadline to the switch-in

    @property
    def irq_ns(self) -> int | None:
        """deadline -> hrtimer expiry (rtla's IRQ latency), as --kernel times it."""
        return None if self.expiry_ns is None else self.expiry_ns - self.breach.deadline_ns

    @property
    def thread_ns(self) -> int | None:
        """hrtimer expiry -> switch-in (rtla's thread latency)."""
        if self.expiry_ns is None or self.switched_in_ns is None:
            return None
        return self.switched_in_ns - self.expiry_ns

    @property
    def kernel_ns(self) -> int | None:
        """deadline -> switch-in: irq_ns + thread_ns exactly."""
        return None if self.switched_in_ns is None else self.switched_in_ns - self.breach.deadline_ns

    @property
    def culprit(self) -> Part | None:
        """The largest part that is not the probe itself or idle time."""
        blame = [p for p in self.parts if p.kind not in ("probe", "idle", "unknown")]
        return blame[0] if blame else None


_ENTRY = {int(EventKind.IRQ_ENTRY): "irq", int(EventKind.VECTOR_ENTRY): "vector",
          int(EventKind.SOFTIRQ_ENTRY): "softirq", int(EventKind.TASKLET_ENTRY): "tasklet"}
_EXIT = {int(EventKind.IRQ_EXIT): "irq", int(EventKind.VECTOR_EXIT): "vector",
         int(EventKind.SOFTIRQ_EXIT): "softirq", int(EventKind.TASKLET_EXIT): "tasklet"}


def explain(batch: EventBatch, breaches: Sequence[Breach],
            comms: Mapping[int, str] | None = None) -> tuple[Explanation, ...]:
    """Split each breach window into the contexts that ran in it, like rtla's auto-analysis.

    Works from irq:*, irq_vectors:* and sched:sched_switch/sched_waking alone (no timerlat).
    comms: task names known to the caller; they win over the trace's (a ksoftirqd/N that never
    switched in during the trace has no name in the batch; irqlab's own threads say so).
    """
    if comms:
        import dataclasses

        batch = dataclasses.replace(batch, comms={**batch.comms, **comms})
    out: list[Explanation] = []
    for cpu in sorted({b.cpu for b in breaches}):
        events = _CpuEvents(batch, cpu)
        out.extend(events.explain(b) for b in breaches if b.cpu == cpu)
    return tuple(out)


class _CpuEvents:
    """One CPU's events with an index of its context switches."""

    def __init__(self, batch: EventBatch, cpu: int) -> None:
        mine = batch.select(batch.cpu == cpu)
        order = np.argsort(mine.ts_ns, kind="stable")
        self.ts, self.kind, self.pid = mine.ts_ns[order], mine.kind[order], mine.pid[order]
        self.a0, self.a1 = mine.arg0[order], mine.arg1[order]
        self.switch_idx = np.flatnonzero(self.kind == EventKind.SCHED_SWITCH)
        self.batch, self.cpu = batch, cpu
        self.lost = bool(batch.lost.get(cpu))

    def explain(self, b: Breach) -> Explanation:
        # Start at the last context switch before the deadline: the scheduler does not run in
        # hard or soft interrupt context (kernel/sched/core.c, schedule_debug(): "scheduling
        # while atomic", v6.18, !PREEMPT_RT), so no interrupt context is open there.
        k = int(np.searchsorted(self.ts[self.switch_idx], b.deadline_ns, side="right")) - 1
        first = int(self.switch_idx[k]) if k >= 0 else 0
        last = int(np.searchsorted(self.ts, b.woke_ns, side="right"))
        sweep = _Sweep(self, b, task=int(self.a0[first]) if k >= 0 else None)
        for i in range(first + 1 if k >= 0 else 0, last):
            sweep.step(i)
        sweep.charge(b.woke_ns)
        covered = self.batch.start_ns <= b.deadline_ns and b.woke_ns <= self.batch.end_ns
        return sweep.result(complete=covered and not self.lost and k >= 0)


class _Sweep:
    """Charge each slice of [deadline, wake-up] to the innermost context running in it."""

    def __init__(self, ev: _CpuEvents, b: Breach, task: int | None) -> None:
        self.ev, self.b, self.task = ev, b, task
        self.prev = b.deadline_ns
        self.stack: list[tuple[str, int, int, int, int]] = []  # (kind, id, serial, pid, entry ns)
        self.serial = 0
        self.time: dict[tuple[str, str], int] = {}
        self.runs: dict[tuple[str, str], set[int]] = {}
        self.woken_ns: int | None = None
        self.switched_in_ns: int | None = None
        self.timer_irq_ns: int | None = None
        self.expiry_ns: int | None = None
        self.kernel_charged_ns: int | None = None

    def charge(self, t: int) -> None:
        lo, hi = max(self.prev, self.b.deadline_ns), min(t, self.b.woke_ns)
        self.prev = max(self.prev, t)
        if hi <= lo:
            return
        key, serial = self._current()
        self.time[key] = self.time.get(key, 0) + hi - lo
        self.runs.setdefault(key, set()).add(serial)

    def step(self, i: int) -> None:
        ev = self.ev
        t, kind = int(ev.ts[i]), int(ev.kind[i])
        self.charge(t)
        if kind in _ENTRY:
            self.serial += 1
            ident = int(ev.a1[i]) if kind == EventKind.VECTOR_ENTRY else int(ev.a0[i])
            self.stack.append((_ENTRY[kind], ident, self.serial, int(ev.pid[i]), t))
        elif kind in _EXIT:
            for j in range(len(self.stack) - 1, -1, -1):  # an unmatched exit is ignored
                if self.stack[j][0] == _EXIT[kind]:
                    del self.stack[j:]
                    break
        elif kind == EventKind.SCHED_SWITCH:
            self.task = int(ev.a0[i])
            if self.task == self.b.pid and self.switched_in_ns is None and t >= self.b.deadline_ns:
                self.switched_in_ns = t
                self.kernel_charged_ns = sum(self.time.values())  # charged up to t just above
        elif kind == EventKind.SCHED_WAKEUP and int(ev.a0[i]) == self.b.pid and t >= self.b.deadline_ns:
            if self.woken_ns is None:
                self.woken_ns = t
                # hrtimer_wakeup() wakes the probe straight from its timer's expiry: nothing is
                # traced between the two (analysis/wakeup.py, kernel/time/hrtimer.c v6.18).
                if i > 0 and int(ev.kind[i - 1]) == EventKind.HRTIMER_EXPIRE:
                    self.expiry_ns = int(ev.ts[i - 1])
                # The innermost hard interrupt open here is the timer interrupt that ran
                # hrtimer_wakeup() (kernel/time/hrtimer.c, v6.18); a softirq around it may
                # have begun long before.
                hard = [c for c in self.stack if c[0] in ("vector", "irq")] or self.stack
                if hard:
                    self.timer_irq_ns = max(0, hard[-1][4] - self.b.deadline_ns)

    def _current(self) -> tuple[tuple[str, str], int]:
        if self.stack:
            kind, ident, serial, pid, _ = self.stack[-1]
            return (kind, self._label(kind, ident, pid)), serial
        if self.task is None:
            return ("unknown", "task unknown (no context switch traced before the deadline)"), -1
        if self.task == self.b.pid:
            return ("probe", "probe: switch-in to user space (syscall exit, Python)"), -3
        # The probe is woken from the timer interrupt (hrtimer_wakeup()), so task time before
        # the wake-up is time the timer interrupt was held off: interrupts disabled, or, in a
        # VM, the vCPU not running at all; task time after it is preemption held off.
        before = self.woken_ns is None
        if self.task == 0:
            return ("idle", "idle: timer interrupt late (idle exit or vCPU not running)" if before
                    else "idle after the wake-up"), -2
        comm = self.ev.batch.comms.get(self.task, "?")
        phase = "before the timer interrupt (IRQs off or vCPU preempted)" if before else "after the wake-up (preemption off)"
        return ("task", f"task {comm} (pid {self.task}) {phase}"), -4 - 2 * self.task - before

    def _label(self, kind: str, ident: int, pid: int) -> str:
        names = self.ev.batch
        if kind == "irq":
            return f"IRQ {ident} {names.irq_names.get(ident, '?')}"
        if kind == "vector":
            base = VECTOR_BY_ID[ident] if 0 <= ident < len(VECTOR_BY_ID) else "?"
            return f"{VECTOR_NAMES.get(base, '?')} vector ({base})"
        if kind == "softirq":
            name = SOFTIRQ_NAMES[ident] if 0 <= ident < len(SOFTIRQ_NAMES) else str(ident)
            comm = names.comms.get(pid, "")
            return f"{name} softirq" + (f" in {comm}" if comm.startswith("ksoftirqd/") else "")
        return f"tasklet {names.symbols.get(ident, hex(ident))}"

    def result(self, complete: bool) -> Explanation:
        parts = [Part(k, label, ns, len(self.runs[(k, label)])) for (k, label), ns in self.time.items()]
        parts.sort(key=lambda p: (-p.duration_ns, p.label))
        return Explanation(self.b, tuple(parts), self.timer_irq_ns, self.woken_ns, self.switched_in_ns, complete,
                           self.expiry_ns, self.kernel_charged_ns if self.switched_in_ns is not None else None)


@dataclass(frozen=True, slots=True)
class Blame:
    """One context summed over every explained breach."""

    kind: str
    label: str
    total_ns: int
    breaches: int  # in how many breach windows it ran
    worst_ns: int  # its largest share of a single window


# Bytes one traced event takes in the ring buffer, about: a record header and the common fields
# (16 bytes) and a payload of 8 (softirq_entry) to 64 (sched_switch, two comms) bytes.
EVENT_BYTES = 48


def busiest_loss(batch: EventBatch, min_window_s: float) -> tuple[int, float]:
    """(CPU, events per second traced + lost) of the CPU that lost events and made the most;
    the window counts as at least min_window_s (a drain period)."""
    window_s = max(batch.window_ns / 1e9, min_window_s)
    per_cpu = {c: int((batch.cpu == c).sum()) + int(n) for c, n in batch.lost.items() if n}
    cpu = max(per_cpu, key=per_cpu.__getitem__, default=0)
    return cpu, per_cpu.get(cpu, 0) / window_s


def buffer_to_hold(rate: float, seconds: float, current_kb: int) -> int:
    """A trace buffer per CPU that holds `seconds` of `rate` events/s, in KiB: a power of two, at
    least the current size, at most 1 GiB (what tracefs buffer_size_kb is given here)."""
    need = max(current_kb, math.ceil(rate * EVENT_BYTES * seconds / 1024))
    return min(1 << (need - 1).bit_length(), 1 << 20)


def summarize_blame(explanations: Sequence[Explanation]) -> tuple[Blame, ...]:
    """Sum the parts over all breaches, largest total first."""
    acc: dict[tuple[str, str], list[int]] = {}
    for e in explanations:
        for p in e.parts:
            row = acc.setdefault((p.kind, p.label), [0, 0, 0])
            row[0] += p.duration_ns
            row[1] += 1
            row[2] = max(row[2], p.duration_ns)
    rows = [Blame(k, label, *v) for (k, label), v in acc.items()]
    return tuple(sorted(rows, key=lambda r: (-r.total_ns, r.label)))
