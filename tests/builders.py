"""Small builders of model values for analysis tests (no parsing involved)."""

from __future__ import annotations

import numpy as np

from irqlab.model.snapshot import HostInfo, Interrupts, IrqLine, Snapshot, Softirqs, Softnet, SoftnetRow, Stat, TaskInfo
from irqlab.model.vectors import SOFTIRQ_NAMES

NS = 1_000_000_000


def interrupts(cpus, rows):
    """rows: list of (irq, name, counts|int) — an int is a single-value row like ERR."""
    lines, counts, totals = [], [], []
    seen: dict[str, int] = {}
    for irq, name, values in rows:
        seen[irq] = seen.get(irq, 0) + 1
        key = irq if seen[irq] == 1 else f"{irq}#{seen[irq]}"
        if isinstance(values, int):
            lines.append(IrqLine(irq=irq, key=key, description=name, per_cpu=False))
            counts.append([0] * len(cpus))
            totals.append(values)
        else:
            numbered = irq.isdigit()
            lines.append(
                IrqLine(irq=irq, key=key, chip="PCI-MSIX" if numbered else "", actions=(name,) if numbered else (), description="" if numbered else name)
            )
            counts.append(list(values))
            totals.append(sum(values))
    return Interrupts(
        cpus=tuple(cpus),
        lines=tuple(lines),
        counts=np.array(counts, dtype=np.int64).reshape(len(rows), len(cpus)),
        totals=np.array(totals, dtype=np.int64),
    )


def softirqs(cpus, per_vector: dict[str, list[int]]):
    vectors = tuple(SOFTIRQ_NAMES)
    counts = np.array([per_vector.get(v, [0] * len(cpus)) for v in vectors], dtype=np.int64)
    return Softirqs(tuple(cpus), vectors, counts)


def stat(cpus, rows: list[list[int]]):
    times = np.full((len(cpus), 10), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        times[i, : len(r)] = r
    total = np.where(times.min(axis=0) < 0, -1, times.sum(axis=0))
    return Stat(cpus=tuple(cpus), times=times, total_times=total, nfields=len(rows[0]))


def softnet(rows: list[tuple[int, int, int, int]], with_cpu_column=True):
    """rows: (cpu, processed, dropped, time_squeeze)."""
    return Softnet(tuple(SoftnetRow(cpu=c, cpu_from_column=with_cpu_column, processed=p, dropped=d, time_squeeze=s) for c, p, d, s in rows))


def ksoftirqd(cpu: int, run_ns: int, pid: int | None = None):
    return TaskInfo(
        pid=pid or 10 + cpu, comm=f"ksoftirqd/{cpu}", kind="ksoftirqd", cpu=cpu, irq=None,
        utime_ticks=0, stime_ticks=run_ns // 10_000_000, run_ns=run_ns, policy="other",
        rt_priority=0, nice=0, allowed_cpus=(cpu,),
    )


def snapshot(t_s: float, **parts) -> Snapshot:
    return Snapshot(taken_ns=int(t_s * NS), wall_time=0.0, host=HostInfo(hostname="test", kernel="6.18"), **parts)
