"""Rates between two snapshots: 32-bit wrap, CPU hotplug, IRQ re-allocation, counter resets.

Every per-CPU count in /proc/interrupts (kstat_irqs, `unsigned int`), /proc/softirqs
(kstat.softirqs[], `unsigned int`) and softnet_stat (`unsigned int` fields of struct
softnet_data) is 32 bits wide and wraps; deltas are taken modulo 2^32. A counter that went
backwards by more than half the range is not a wrap but a reset (the IRQ descriptor was
freed and allocated again, the machine rebooted, the capture pair is swapped): it is reported
and its cell is left out (NaN), never turned into a huge or negative rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from irqlab.errors import IrqlabError
from irqlab.model.snapshot import (
    CPU_TIME_FIELDS,
    Interrupts,
    IrqLine,
    Snapshot,
    Softirqs,
    Softnet,
    SoftnetRow,
    Stat,
    TaskInfo,
)
from irqlab.units import NS_PER_S

WRAP = 1 << 32
HALF = 1 << 31
# A modular delta that implies more than this many events per second on one CPU is not a
# wrap either: the fastest interrupt sources seen in practice stay far below 10 M/s per CPU.
MAX_PLAUSIBLE_RATE_PER_CPU = 50_000_000.0


@dataclass(frozen=True, slots=True)
class DeltaWarning:
    """Something the differencing refused to turn into a rate, and why."""

    source: str  # "interrupts", "softirqs", "softnet", "tasks"
    subject: str  # "41", "LOC", "NET_RX", "cpu3", "ksoftirqd/1"
    kind: str  # "reset", "reallocated", "appeared", "vanished", "cpu-offline", "cpu-online"
    message: str


def wrap_delta(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Increments of 32-bit counters modulo 2^32 (int64); >= HALF means a reset, not a wrap."""
    old = np.asarray(old).astype(np.int64, copy=False)
    new = np.asarray(new).astype(np.int64, copy=False)
    # Two's complement makes `& (2^32 - 1)` the same as `mod 2^32`, at a quarter of the cost.
    # In place: at 1152 CPUs a second 9.7 MB array is ~2,400 page faults more.
    out: np.ndarray = np.subtract(new, old)
    out &= WRAP - 1
    return out


def counter_delta(old: np.ndarray, new: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Deltas of 32-bit counters modulo 2^32 as float64, and a mask of implausible cells."""
    out, bad, _ = _counter_delta(old, new, dt_s)
    return out, bad


def _counter_delta(old: np.ndarray, new: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """counter_delta(), and the int64 deltas it no longer needs (a buffer for the rates)."""
    delta = wrap_delta(old, new)
    # For u32 counters the modular delta is >= 2^31 exactly when the counter went back by up
    # to 2^31 (a reset) or forward by more than 2^31 (impossible within any sane interval);
    # a smaller delta that still implies more than the plausible per-CPU rate is a reset too.
    limit = HALF
    if dt_s > 0:
        limit = min(limit, int(MAX_PLAUSIBLE_RATE_PER_CPU * dt_s) + 1)
    bad = delta >= limit
    out = delta.astype(np.float64)
    if bad.any():
        out[bad] = np.nan
    return out, bad, delta


def _cpu_match(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """CPUs present in both (by id, never position), with their column indices in a and b."""
    if a == b:
        idx = np.arange(len(a))
        return a, idx, idx
    pos_a = {cpu: i for i, cpu in enumerate(a)}
    common = tuple(cpu for cpu in b if cpu in pos_a)
    pos_b = {cpu: i for i, cpu in enumerate(b)}
    return (
        common,
        np.array([pos_a[c] for c in common], dtype=np.intp),
        np.array([pos_b[c] for c in common], dtype=np.intp),
    )


def _take(counts: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """counts[rows][:, cols], without a copy when both are everything in order (the usual case)."""
    nrows, ncols = counts.shape
    all_rows = len(rows) == nrows and (nrows == 0 or (rows[0] == 0 and rows[-1] == nrows - 1 and (np.diff(rows) == 1).all()))
    all_cols = len(cols) == ncols and (ncols == 0 or (cols[0] == 0 and cols[-1] == ncols - 1 and (np.diff(cols) == 1).all()))
    if all_rows and all_cols:
        return counts
    taken: np.ndarray = counts[rows] if all_cols else counts[np.ix_(rows, cols)]
    return taken


def _hotplug_warnings(source: str, a: tuple[int, ...], b: tuple[int, ...]) -> list[DeltaWarning]:
    sa, sb = set(a), set(b)
    out = [
        DeltaWarning(source, f"cpu{c}", "cpu-offline", f"CPU{c} went offline; left out")
        for c in sorted(sa - sb)
    ]
    out += [
        DeltaWarning(source, f"cpu{c}", "cpu-online", f"CPU{c} came online; left out until the next interval")
        for c in sorted(sb - sa)
    ]
    return out


# --- interrupts ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class IrqRates:
    """Per-row, per-CPU deltas and rates of /proc/interrupts; NaN = not differenced."""

    cpus: tuple[int, ...]
    lines: tuple[IrqLine, ...]  # rows present in both snapshots, in the newer one's order
    delta: np.ndarray  # float64 (rows, cpus)
    rate: np.ndarray  # float64 (rows, cpus), per second
    total_delta: np.ndarray  # float64 (rows,)
    total_rate: np.ndarray  # float64 (rows,)
    warnings: tuple[DeltaWarning, ...]

    def cpu_rate(self) -> np.ndarray:
        """Interrupts per second per CPU, summed over rows (NaN cells count as 0)."""
        out: np.ndarray = np.nansum(self.rate, axis=0)
        return out


def _same_irq(old: IrqLine, new: IrqLine) -> bool:
    """False when a numbered IRQ now belongs to another device (re-allocated number)."""
    if not new.numbered:
        return True
    if old.actions and new.actions and old.actions != new.actions:
        return False
    return old.chip == new.chip or not old.chip or not new.chip


def interrupt_rates(a: Interrupts, b: Interrupts, dt_ns: int) -> IrqRates:
    """Difference two /proc/interrupts readings taken dt_ns apart."""
    dt_s = dt_ns / NS_PER_S
    cpus, ia, ib = _cpu_match(a.cpus, b.cpus)
    warnings = _hotplug_warnings("interrupts", a.cpus, b.cpus)
    index_a = a.index()
    rows_a: list[int] = []
    rows_b: list[int] = []
    lines: list[IrqLine] = []
    for j, line in enumerate(b.lines):
        i = index_a.get(line.key)
        if i is None:
            warnings.append(DeltaWarning("interrupts", line.irq, "appeared", f"IRQ {line.irq} ({line.name}) appeared"))
            continue
        old = a.lines[i]
        if not _same_irq(old, line):
            warnings.append(
                DeltaWarning(
                    "interrupts",
                    line.irq,
                    "reallocated",
                    f"IRQ {line.irq} was {old.name!r}, now {line.name!r}; not differenced",
                )
            )
            continue
        rows_a.append(i)
        rows_b.append(j)
        lines.append(line)
    index_b = b.index()
    for line in a.lines:
        if line.key not in index_b:
            warnings.append(DeltaWarning("interrupts", line.irq, "vanished", f"IRQ {line.irq} ({line.name}) vanished"))
    ra = np.array(rows_a, dtype=np.intp)
    rb = np.array(rows_b, dtype=np.intp)
    # A row whose counts are all 0 in both readings has a delta of 0 in every cell: most rows of
    # a big machine (944 of 1056 at 1152 CPUs; an IRQ sits on few CPUs). Only the other rows
    # are differenced, so the cost follows the activity; the zero rows of the results stay
    # np.zeros pages that nothing writes (counts are never negative, so a total of 0 means
    # every cell is 0).
    live = np.flatnonzero((a.totals[ra] != 0) | (b.totals[rb] != 0))
    shape = (len(lines), len(cpus))
    delta_live, bad_live, _ = _counter_delta(_take(a.counts, ra[live], ia), _take(b.counts, rb[live], ib), dt_s)
    delta = np.zeros(shape)
    delta[live] = delta_live
    per_cpu = np.array([line.per_cpu for line in lines], dtype=bool)
    # Totals: per-CPU rows sum their cells (so hotplugged CPUs do not distort them; a reset cell
    # makes the row's total NaN, as it should); rows with one value (ERR, MIS: atomic_t, also
    # 32-bit) difference that value.
    total_delta = np.zeros(len(lines))
    total_delta[live] = delta_live.sum(axis=1)
    bad_rows = np.zeros(len(lines), dtype=bool)
    bad_rows[live] = bad_live.any(axis=1)
    bad_cells = dict(zip(live.tolist(), bad_live))
    if (~per_cpu).any():
        delta[~per_cpu, :] = np.nan
        single, single_bad = counter_delta(a.totals[ra], b.totals[rb], dt_s)
        total_delta = np.where(per_cpu, total_delta, single)
        bad_rows |= single_bad & ~per_cpu
    for k in np.flatnonzero(bad_rows).tolist():
        line = lines[k]
        cells = bad_cells.get(k)
        where = ", ".join(f"CPU{cpus[c]}" for c in np.flatnonzero(cells)) if cells is not None else ""
        warnings.append(
            DeltaWarning("interrupts", line.irq, "reset", f"IRQ {line.irq} ({line.name}) counter went backwards on {where or 'total'}; not differenced")
        )
    rate = np.zeros(shape)
    rate[live] = delta[live] / dt_s
    rate[~per_cpu, :] = np.nan  # as the delta: not differenced per CPU
    return IrqRates(
        cpus=cpus,
        lines=tuple(lines),
        delta=delta,
        rate=rate,
        total_delta=total_delta,
        total_rate=total_delta / dt_s,
        warnings=tuple(warnings),
    )


# --- softirqs -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class SoftirqRates:
    """Per-vector, per-CPU softirq deltas and rates; NaN = not differenced."""

    cpus: tuple[int, ...]
    vectors: tuple[str, ...]
    delta: np.ndarray  # float64 (vectors, cpus)
    rate: np.ndarray
    warnings: tuple[DeltaWarning, ...]

    def vector_rate(self, name: str) -> np.ndarray | None:
        """Per-CPU rate of one vector, or None when the kernel has no such vector."""
        if name not in self.vectors:
            return None
        row: np.ndarray = self.rate[self.vectors.index(name)]
        return row


def softirq_rates(a: Softirqs, b: Softirqs, dt_ns: int) -> SoftirqRates:
    """Difference two /proc/softirqs readings taken dt_ns apart."""
    dt_s = dt_ns / NS_PER_S
    cpus, ia, ib = _cpu_match(a.cpus, b.cpus)
    warnings = _hotplug_warnings("softirqs", a.cpus, b.cpus)
    va = {v: i for i, v in enumerate(a.vectors)}
    vectors = tuple(v for v in b.vectors if v in va)
    ra = np.array([va[v] for v in vectors], dtype=np.intp)
    rb = np.array([b.vectors.index(v) for v in vectors], dtype=np.intp)
    delta, bad = counter_delta(_take(a.counts, ra, ia), _take(b.counts, rb, ib), dt_s)
    for k in np.flatnonzero(bad.any(axis=1)):
        warnings.append(DeltaWarning("softirqs", vectors[k], "reset", f"softirq {vectors[k]} counter went backwards; not differenced"))
    return SoftirqRates(cpus, vectors, delta, delta / dt_s, tuple(warnings))


# --- /proc/stat ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class CpuTimes:
    """Share of each CPU's time per /proc/stat field, in percent; NaN where not printed."""

    cpus: tuple[int, ...]
    fields: tuple[str, ...]
    pct: np.ndarray  # float64 (cpus, fields)
    total_pct: np.ndarray  # float64 (fields,), the aggregate "cpu" line
    softirq_rate: np.ndarray | None  # per vector number, from the "softirq" line (64-bit sums)
    intr_rate: float | None

    def field(self, name: str) -> np.ndarray:
        return self.pct[:, self.fields.index(name)]


def _pct(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Percent of elapsed ticks per field; guest time is inside user/nice so it is not summed."""
    d = (new - old).astype(np.float64)
    d[(old < 0) | (new < 0)] = np.nan
    d[d < 0] = np.nan  # a cpu line that went backwards (hotplug reset): no answer
    busy_fields = d[..., :8]
    total = np.nansum(busy_fields, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * d / total, np.nan)


def cpu_times(a: Stat, b: Stat, dt_ns: int) -> CpuTimes:
    """CPU time shares between two /proc/stat readings."""
    dt_s = dt_ns / NS_PER_S
    cpus, ia, ib = _cpu_match(a.cpus, b.cpus)
    pct = _pct(a.times[ia], b.times[ib])
    total = _pct(a.total_times[None, :], b.total_times[None, :])[0]
    softirq_rate = None
    if a.softirq is not None and b.softirq is not None and len(a.softirq) == len(b.softirq):
        # Per-vector sums are unsigned int in show_stat(): they wrap at 2^32 too.
        delta, _ = counter_delta(np.array(a.softirq), np.array(b.softirq), dt_s * len(cpus or (0,)))
        softirq_rate = delta / dt_s
    intr_rate = None
    if a.intr_total is not None and b.intr_total is not None and b.intr_total >= a.intr_total:
        intr_rate = (b.intr_total - a.intr_total) / dt_s
    return CpuTimes(cpus, CPU_TIME_FIELDS, pct, total, softirq_rate, intr_rate)


# --- softnet ------------------------------------------------------------------------------

SOFTNET_RATE_FIELDS: tuple[str, ...] = ("processed", "dropped", "time_squeeze", "received_rps", "flow_limit_count")


# Shaped like SoftirqRates (CPUs, column names, arrays, warnings), but its arrays are (cpus,
# fields) with a gauge beside them, as softnet_stat is laid out: two types, not one generic table.
@dataclass(frozen=True, eq=False, slots=True)
class SoftnetRates:
    """Per-CPU softnet_stat rates, per second; NaN where a column is absent or reset."""

    cpus: tuple[int, ...]
    fields: tuple[str, ...]
    rate: np.ndarray  # float64 (cpus, fields)
    delta: np.ndarray
    backlog_len: tuple[int | None, ...]  # current queue length (a gauge, not a rate)
    cpu_ids_known: bool  # False before Linux 5.14: CPU ids are row positions
    warnings: tuple[DeltaWarning, ...]

    def field(self, name: str) -> np.ndarray:
        return self.rate[:, self.fields.index(name)]


def _softnet_matrix(rows: Iterable[SoftnetRow], cpus: Sequence[int]) -> np.ndarray:
    by = {r.cpu: r for r in rows}
    out = np.full((len(cpus), len(SOFTNET_RATE_FIELDS)), -1, dtype=np.int64)
    for i, cpu in enumerate(cpus):
        row = by[cpu]
        for j, name in enumerate(SOFTNET_RATE_FIELDS):
            value = getattr(row, name)
            if value is not None:
                out[i, j] = value
    return out


def softnet_rates(a: Softnet, b: Softnet, dt_ns: int) -> SoftnetRates:
    """Difference two softnet_stat readings, matching rows by CPU id."""
    dt_s = dt_ns / NS_PER_S
    cpus_a = tuple(r.cpu for r in a.rows)
    cpus_b = tuple(r.cpu for r in b.rows)
    cpus, _, _ = _cpu_match(cpus_a, cpus_b)
    warnings = _hotplug_warnings("softnet", cpus_a, cpus_b)
    old = _softnet_matrix(a.rows, cpus)
    new = _softnet_matrix(b.rows, cpus)
    delta, bad = counter_delta(old, new, dt_s)
    delta[(old < 0) | (new < 0)] = np.nan
    for i, j in zip(*np.nonzero(bad & (old >= 0) & (new >= 0))):
        warnings.append(
            DeltaWarning("softnet", f"cpu{cpus[i]}", "reset", f"softnet {SOFTNET_RATE_FIELDS[j]} on CPU{cpus[i]} went backwards")
        )
    by_b = b.by_cpu()
    return SoftnetRates(
        cpus=cpus,
        fields=SOFTNET_RATE_FIELDS,
        rate=delta / dt_s,
        delta=delta,
        backlog_len=tuple(by_b[c].backlog_len for c in cpus),
        cpu_ids_known=all(r.cpu_from_column for r in b.rows),
        warnings=tuple(warnings),
    )


# --- kernel threads -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskRate:
    """A ksoftirqd or IRQ thread's CPU use over the interval."""

    task: TaskInfo
    cpu_pct: float  # percent of one CPU
    source: str  # "schedstat" (ns, exact) or "stat" (ticks, sampled)


def task_rates(a: tuple[TaskInfo, ...], b: tuple[TaskInfo, ...], dt_ns: int, clk_tck: int) -> tuple[TaskRate, ...]:
    """CPU share of each kernel thread present in both snapshots (matched by pid and comm)."""
    old = {(t.pid, t.comm): t for t in a}
    out = []
    for t in b:
        prev = old.get((t.pid, t.comm))
        if prev is None:
            continue
        if t.run_ns is not None and prev.run_ns is not None and t.run_ns >= prev.run_ns:
            out.append(TaskRate(t, 100.0 * (t.run_ns - prev.run_ns) / dt_ns, "schedstat"))
        elif t.cpu_ticks >= prev.cpu_ticks:
            seconds = (t.cpu_ticks - prev.cpu_ticks) / clk_tck
            out.append(TaskRate(t, 100.0 * seconds * NS_PER_S / dt_ns, "stat"))
    return tuple(out)


# --- everything ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class Rates:
    """All rates between two snapshots of one machine."""

    interval_ns: int
    before: Snapshot
    after: Snapshot
    interrupts: IrqRates | None
    softirqs: SoftirqRates | None
    cpu: CpuTimes | None
    softnet: SoftnetRates | None
    tasks: tuple[TaskRate, ...]

    @property
    def interval_s(self) -> float:
        return self.interval_ns / NS_PER_S

    @property
    def warnings(self) -> tuple[DeltaWarning, ...]:
        out: list[DeltaWarning] = []
        for part in (self.interrupts, self.softirqs, self.softnet):
            if part is not None:
                out.extend(part.warnings)
        return tuple(out)

    def cpu_ids(self) -> tuple[int, ...]:
        """Every CPU id that some table of these rates covers, ascending."""
        ids: set[int] = set()
        for part in (self.interrupts, self.softirqs, self.cpu, self.softnet):
            if part is not None:
                ids.update(part.cpus)
        return tuple(sorted(ids))

    def ksoftirqd_pct(self) -> dict[int, float]:
        """ksoftirqd %CPU by CPU id."""
        return {r.task.cpu: r.cpu_pct for r in self.tasks if r.task.kind == "ksoftirqd" and r.task.cpu is not None}

    def napi_pct(self) -> dict[int, float] | None:
        """%CPU of the napi/DEV-ID kthreads by the CPU each last ran on; None when there are none.

        Threaded NAPI's receive work is thread time (net/core/dev.c napi_threaded_poll(), v6.18),
        absent from %softirq: this is where it shows. A thread that moved between CPUs in the
        interval counts on the last one (/proc/PID/stat `processor`).
        """
        napi = [r for r in self.tasks if r.task.kind == "napi"]
        if not napi:
            return None
        out: dict[int, float] = {}
        for r in napi:
            if r.task.last_cpu is not None:
                out[r.task.last_cpu] = out.get(r.task.last_cpu, 0.0) + r.cpu_pct
        return out


def compute_rates(a: Snapshot, b: Snapshot, interval_ns: int | None = None) -> Rates:
    """Rates between two snapshots; interval_ns overrides their timestamps."""
    dt = interval_ns if interval_ns is not None else b.taken_ns - a.taken_ns
    if dt <= 0:
        raise IrqlabError(
            f"the second snapshot is not later than the first ({dt / NS_PER_S:+.3f} s); "
            "pass --interval SECONDS or swap them"
        )
    return Rates(
        interval_ns=dt,
        before=a,
        after=b,
        interrupts=interrupt_rates(a.interrupts, b.interrupts, dt) if a.interrupts and b.interrupts else None,
        softirqs=softirq_rates(a.softirqs, b.softirqs, dt) if a.softirqs and b.softirqs else None,
        cpu=cpu_times(a.stat, b.stat, dt) if a.stat and b.stat else None,
        softnet=softnet_rates(a.softnet, b.softnet, dt) if a.softnet and b.softnet else None,
        tasks=task_rates(a.tasks, b.tasks, dt, b.host.clk_tck),
    )


def _zero_like(snap: Snapshot) -> Snapshot:
    """The same machine with every counter at zero, at monotonic time 0 (boot)."""
    irq, soft, stat, net = snap.interrupts, snap.softirqs, snap.stat, snap.softnet

    def zero_softnet(r: SoftnetRow) -> SoftnetRow:
        # Any: the field names come from the SOFTNET_RATE_FIELDS table, beyond mypy's reach.
        zeros: dict[str, Any] = {f: 0 for f in SOFTNET_RATE_FIELDS if getattr(r, f) is not None}
        return replace(r, **zeros)

    return Snapshot(
        taken_ns=0,
        wall_time=0.0,
        host=snap.host,
        interrupts=replace(irq, counts=np.zeros_like(irq.counts), totals=np.zeros_like(irq.totals)) if irq else None,
        softirqs=replace(soft, counts=np.zeros_like(soft.counts)) if soft else None,
        stat=replace(
            stat,
            times=np.where(stat.times < 0, -1, 0),
            total_times=np.where(stat.total_times < 0, -1, 0),
            intr_total=0 if stat.intr_total is not None else None,
            softirq=tuple(0 for _ in stat.softirq) if stat.softirq is not None else None,
        )
        if stat
        else None,
        softnet=Softnet(tuple(zero_softnet(r) for r in net.rows))
        if net
        else None,
        irqinfo=snap.irqinfo,
        tasks=tuple(replace(t, utime_ticks=0, stime_ticks=0, run_ns=0 if t.run_ns is not None else None) for t in snap.tasks),
        origin="boot",
    )


def since_boot(snap: Snapshot) -> Rates:
    """Average rates since boot: every counter against zero at CLOCK_MONOTONIC 0.

    What one capture (or one reading) can say without a second one. Per-CPU counters are
    32-bit: on a machine up long enough for one to wrap, its average is too low.
    """
    if snap.taken_ns <= 0:
        raise IrqlabError("this reading carries no time since boot (no irqlab-capture.json or proc/uptime)")
    return compute_rates(_zero_like(snap), snap)
