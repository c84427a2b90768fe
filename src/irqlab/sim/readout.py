"""The simulator's outputs in the live host's types: Snapshot, EventBatch, and kernel text.

snapshot() builds model.snapshot values from the machine's counters; the render_* functions
print a Snapshot the way the kernel prints its files (the seed's show_interrupts(),
fs/proc/softirqs.c, fs/proc/stat.c show_stat(), net/core/net-procfs.c softnet_seq_show(),
fs/proc/array.c), so a simulated capture directory reads back through irqlab's own parsers.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np

from irqlab.model.events import COLUMNS, DTYPES, EventBatch
from irqlab.model.net import NetDevice, NetNamespace, NetState, NetView, RxQueue, ThreadSched, UdpSocket
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
    sockets: dict[str, Any]  # napi.Socket by receiver task name


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
                               time_squeeze=sd.time_squeeze & U32, received_rps=sd.received_rps & U32, flow_limit_count=0,
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
                           actions=(ln.name,), chip_name="PCI-MSIX", hwirq=str(irq % 64), name="edge", type="edge",
                           managed=ln.managed)
    return out


def _threads(m: Counters) -> tuple[ThreadSched, ...]:
    """Every thread's schedstat: run time, and time runnable on a run queue (including a wait still going on).

    The kernel adds a wait to run_delay when it ends (sched_info_arrive()); here a task still
    waiting at the snapshot counts up to now, so a thread that never gets the CPU shows it.
    Tasks are pinned in the model: last_cpu is their CPU. NAPI threads are not modelled.
    """
    now = m.engine.now
    return tuple(
        ThreadSched(tid=t.pid, pid=t.pid, comm=t.name, last_cpu=t.cpu, run_ns=t.run_ns,
                    wait_ns=t.wait_ns + (now - t.queued_ns if t.queued_ns is not None else 0),
                    policy=t.policy, rt_priority=t.prio, kthread=t.kthread)
        for t in m.tasks
    )


# A NIC line named like a multi-queue driver's vector ("eth0-rx-3", igb; "eth0-TxRx-3", ixgbe/i40e)
# is queue 3 of device eth0; any other NIC line is a one-queue device of its own name.
_QUEUE_NAME = re.compile(r"^(?P<dev>.+?)-(?:rx|TxRx)-(?P<q>\d+)$")
NIC_KINDS = ("napi", "netif_rx")


def _nic_queues(m: Counters) -> dict[str, list[tuple[int, Any]]]:
    out: dict[str, list[tuple[int, Any]]] = {}
    for ln in m.lines:
        if ln.dev.kind not in NIC_KINDS:
            continue
        match = _QUEUE_NAME.match(ln.name)
        dev, q = (match.group("dev"), int(match.group("q"))) if match else (ln.name, 0)
        out.setdefault(dev, []).append((q, ln))
    return out


def _netdevice(name: str, queues: list[tuple[int, Any]]) -> NetDevice:
    """statistics/ from the ring counters: taken off the ring, missed when it was full, dropped at the backlog.

    Byte counts, transmit queues, XPS, the NUMA node and the driver are not modelled (left out);
    the model's NICs have no RPS (NET_RX runs where the queue's IRQ runs) and poll in softirq.
    """
    lines = [ln for _, ln in sorted(queues, key=lambda x: x[0])]
    stats = {
        "rx_packets": sum(ln.arrived - ln.missed - ln.queued for ln in lines),
        "rx_missed_errors": sum(ln.missed for ln in lines),
        "rx_dropped": sum(ln.backlog_dropped for ln in lines),
    }
    dev = lines[0].dev
    return NetDevice(name=name, statistics=stats, rx_queues=tuple(RxQueue(q, (), 0) for q, _ in sorted(queues, key=lambda x: x[0])),
                     tx_queues=(), threaded=0, napi_defer_hard_irqs=dev.defer_hard_irqs,
                     gro_flush_timeout_ns=dev.gro_flush_timeout_ns, numa_node=None, driver=None)


# The model's sockets have no addresses: each is a UDP socket bound to port 0, its inode the
# reader's pid (the model's ids are labels); rx_queue is counted in packets, not bytes (left 0).
def _sockets(m: Counters) -> tuple[dict[tuple[str, str], int], tuple[UdpSocket, ...], dict[int, tuple[int, ...]], dict[int, str]]:
    counters: dict[tuple[str, str], int] = {}
    rows, owners, comms = [], {}, {}
    if not m.sockets:
        return counters, (), owners, comms
    drops = sum(s.drops for s in m.sockets.values())
    # udp_recvmsg() counts InDatagrams for a datagram read; __udp_queue_rcv_skb() counts a full
    # buffer's drop as RcvbufErrors and InErrors both (net/ipv4/udp.c, v6.18).
    counters = {("Udp", "InDatagrams"): sum(s.received for s in m.sockets.values()),
                ("Udp", "RcvbufErrors"): drops, ("Udp", "InErrors"): drops}
    for sock in m.sockets.values():
        reader = sock.reader
        rows.append(UdpSocket(4, "0.0.0.0", 0, "0.0.0.0", 0, 7, 0, 0, 0, reader.pid, sock.drops & U32))
        owners[reader.pid] = (reader.pid,)
        comms[reader.pid] = reader.name
    return counters, tuple(rows), owners, comms


def _net(m: Counters) -> NetState:
    """The host namespace (the model has one): a NetDevice per NIC, the UDP MIB and sockets when it has receivers."""
    counters, udp, owners, comms = _sockets(m)
    devices = tuple(_netdevice(name, qs) for name, qs in sorted(_nic_queues(m).items()))
    host = NetNamespace(0, None, 0, (), (), "", host=True)
    return NetState((NetView(host, counters, udp, devices),), socket_pids=owners, comms=comms)


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
        net=_net(m), threads=_threads(m),
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
