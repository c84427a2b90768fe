"""The simulator's outputs in the live host's types: Snapshot, EventBatch, and kernel text.

snapshot() builds model.snapshot values from the machine's counters; the render_* functions
print a Snapshot the way the kernel prints its files (the seed's show_interrupts(),
fs/proc/softirqs.c, fs/proc/stat.c show_stat(), net/core/net-procfs.c softnet_seq_show(),
fs/proc/array.c), so a simulated capture directory reads back through irqlab's own parsers.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from irqlab.model.events import COLUMNS, DTYPES, EventBatch
from irqlab.model.snapshot import (
    HostInfo,
    Interrupts,
    IrqInfo,
    IrqLine,
    Snapshot,
    Softirqs,
    Softnet,
    SoftnetRow,
    Spurious,
    Stat,
    TaskInfo,
)
from irqlab.model.vectors import ARCH_ROWS, NR_SOFTIRQS, SOFTIRQ_NAMES
from irqlab.sim import state
from irqlab.sim.cpu import CPU, Task
from irqlab.sim.engine import Engine
from irqlab.sim.scenario import Scenario

USER_HZ = 100
NS_PER_TICK = 1_000_000_000 // USER_HZ
U32 = 0xFFFFFFFF
# The simulated machine booted this long before the run starts, so that snapshot times (and
# proc/uptime of a capture) are never 0, which readers take for "no time".
BOOT_NS = 10_000_000_000
# The x86 arch rows this model counts, in arch_show_interrupts() order (labels: model/vectors).
SIM_ARCH_ROWS = ("NMI", "LOC", "RES", "CAL")


class Counters(Protocol):
    """What snapshot() and event_batch() read of the machine (sim/machine.py, which calls them)."""

    sc: Scenario
    engine: Engine
    cpus: list[CPU]
    tasks: list[Task]
    lines: list[Any]  # line.DeviceLine: the numbered rows
    loc: Any  # the LOC and RES rows (line.Line)
    res: Any
    softirq_state: list[state.SoftirqState]
    softnet: list[state.Softnet]  # (softnet_data; model.snapshot.Softnet is the /proc view of it)
    events: list[tuple]
    tasklet_symbols: dict[int, str]
    napi_names: list[str]


def _interrupts(m: Counters) -> Interrupts:
    lines, rows = [], []
    for ln in sorted(m.lines, key=lambda x: int(x.irq)):
        lines.append(IrqLine(ln.irq, ln.irq, ln.chip, str(ln.dev.irq % 64), "edge", (ln.name,)))
        rows.append(ln.counts)
    arch = {"LOC": m.loc.counts, "RES": m.res.counts}
    for name in SIM_ARCH_ROWS:
        lines.append(IrqLine(name, name, description=ARCH_ROWS[name].label))
        rows.append(arch.get(name, [0] * m.sc.cpus))
    counts = np.array(rows, dtype=np.int64).reshape(len(rows), m.sc.cpus) & U32
    for name in ("ERR", "MIS"):
        lines.append(IrqLine(name, name, per_cpu=False))
    counts = np.vstack([counts, np.zeros((2, m.sc.cpus), dtype=np.int64)])
    totals = counts.sum(axis=1)
    return Interrupts(tuple(range(m.sc.cpus)), tuple(lines), counts, totals)


def _stat(m: Counters, softirqs: np.ndarray, intr: Interrupts) -> Stat:
    fields = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
    times = np.zeros((m.sc.cpus, 10), dtype=np.int64)
    for cpu in m.cpus:
        for name, ns in cpu.times.items():
            times[cpu.id, fields.index(name)] = ns // NS_PER_TICK
    nr = max([int(ln.irq) for ln in m.lines] + [15]) + 1
    per_irq = np.zeros(nr, dtype=np.int64)
    for ln in m.lines:
        per_irq[int(ln.irq)] = sum(ln.counts) & U32
    return Stat(
        cpus=tuple(range(m.sc.cpus)), times=times, total_times=times.sum(axis=0), nfields=10,
        intr_total=int(intr.totals.sum()), intr=per_irq, softirq_total=int(softirqs.sum()),
        softirq=tuple(int(x) & U32 for x in softirqs.sum(axis=1)),
        ctxt=sum(t.switches for t in m.tasks), btime=1_700_000_000, processes=len(m.tasks),
        procs_running=sum(1 for t in m.tasks if t.running), procs_blocked=0,
    )


def _softnet(m: Counters) -> Softnet:
    rows = []
    for c, sd in enumerate(m.softnet):
        rows.append(SoftnetRow(cpu=c, cpu_from_column=True, processed=sd.processed & U32, dropped=sd.dropped & U32,
                               time_squeeze=sd.time_squeeze & U32, received_rps=0, flow_limit_count=0,
                               backlog_len=sd.backlog_len, input_qlen=sd.backlog_len, process_qlen=0, ncolumns=15))
    return Softnet(tuple(rows))


def _tasks(m: Counters) -> tuple[TaskInfo, ...]:
    out = []
    for t in m.tasks:
        if t.kind not in ("ksoftirqd", "irq"):
            continue
        out.append(TaskInfo(
            pid=t.pid, comm=t.name, kind=t.kind, cpu=t.cpu if t.kind == "ksoftirqd" else None,
            irq=t.data if t.kind == "irq" else None, utime_ticks=0, stime_ticks=t.run_ns // NS_PER_TICK,
            run_ns=t.run_ns, policy=t.policy, rt_priority=t.prio, nice=t.nice, allowed_cpus=(t.cpu,), last_cpu=t.cpu,
        ))
    return tuple(out)


def _irqinfo(m: Counters) -> dict[int, IrqInfo]:
    out = {}
    for ln in m.lines:
        irq = int(ln.irq)
        spur = Spurious(ln.irq_count, ln.irqs_unhandled, ln.last_unhandled * 1000 // m.sc.hz)
        out[irq] = IrqInfo(irq, affinity=(ln.cpu,), effective_affinity=(ln.cpu,), node=0, spurious=spur,
                           actions=(ln.name,), chip_name="PCI-MSIX", hwirq=str(irq % 64), name="edge", type="edge")
    return out


def snapshot(m: Counters) -> Snapshot:
    """The machine's counters now, as a Snapshot (origin "sim")."""
    sc = m.sc
    softirqs = np.array([[st.counts[v] for st in m.softirq_state] for v in range(NR_SOFTIRQS)], dtype=np.int64) & U32
    intr = _interrupts(m)
    host = HostInfo(hostname=f"sim-{sc.name}", kernel=f"sim ({sc.era} rules, HZ={sc.hz})", machine="x86_64",
                    clk_tck=USER_HZ, possible_cpus=tuple(range(sc.cpus)), online_cpus=tuple(range(sc.cpus)))
    sysctl = {"net.core.netdev_budget": sc.netdev_budget, "net.core.netdev_budget_usecs": sc.budget_usecs,
              "net.core.netdev_max_backlog": sc.netdev_max_backlog, "net.core.dev_weight": sc.dev_weight}
    return Snapshot(
        taken_ns=BOOT_NS + m.engine.now, wall_time=0.0, host=host, interrupts=intr,
        softirqs=Softirqs(tuple(range(sc.cpus)), SOFTIRQ_NAMES, softirqs), stat=_stat(m, softirqs, intr),
        softnet=_softnet(m), irqinfo=_irqinfo(m), tasks=_tasks(m), sysctl=sysctl, origin="sim",
    )


def event_batch(m: Counters) -> EventBatch:
    """Every traced event of the run (machine.trace = true) as one EventBatch."""
    if m.events:
        arr = list(zip(*m.events))
        cols = {c: np.array(arr[i], dtype=DTYPES[c]) for i, c in enumerate(COLUMNS)}
    else:
        cols = {c: np.zeros(0, dtype=DTYPES[c]) for c in COLUMNS}
    return EventBatch(
        **cols, irq_names={int(ln.irq): ln.name for ln in m.lines}, comms={t.pid: t.name for t in m.tasks},
        symbols=dict(m.tasklet_symbols), devices=tuple(m.napi_names), lost={}, start_ns=0,
        end_ns=m.engine.now, source="sim",
    )
