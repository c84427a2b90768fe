"""A placement plan: NIC queue IRQs one per NUMA-local housekeeping CPU, RPS/XPS to match.

Pure: built from the interrupt map (analysis/irqmap.py) and the CPUs the caller counts as
housekeeping (online minus those meant to be quiet: isolcpus=, nohz_full=, rcu_nocbs=,
outside irqaffinity=). Every affinity write is preflighted with irqmap.preflight(); what the
kernel would refuse (managed queues, per-CPU IRQs) is left alone and listed with why.

Queue i of a device goes to the i-th of its NUMA-local housekeeping CPUs (wrapping round when
there are more queues than CPUs); its rx queue's rps_cpus and its tx queue's xps_cpus name the
same CPU, so a packet is steered, processed and answered where its interrupt lands
(Documentation/networking/scaling.rst, "Suggested Configuration"). A device without IRQs of
its own (a veth, a bridge) has its queues spread over all housekeeping CPUs the same way. Any
other movable IRQ whose affinity reaches a quiet CPU is moved onto the housekeeping CPUs.

A threaded-NAPI kthread (napi/DEV-ID) allowed on a quiet CPU gets its device's NUMA-local
housekeeping CPUs (a thread-affinity write). IRQ threads (irq/N-name) are not placed: each
follows its IRQ's effective affinity by itself (kernel/irq/manage.c, irq_set_thread_affinity()
flags the thread, irq_thread_check_affinity() moves it before its next run).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from irqlab.analysis.irqmap import IrqMap, IrqRow, NetDeviceMap, preflight
from irqlab.analysis.irqvectors import VectorBudget, estimate_matrix, managed_landing
from irqlab.cpulist import format_cpulist
from irqlab.model.irqvectors import VectorMatrix
from irqlab.model.placement import PlaceWrite
from irqlab.model.snapshot import TaskInfo


@dataclass(frozen=True, slots=True)
class LeftAlone:
    """An IRQ (or a device) the plan does not touch, and why."""

    what: str  # "IRQ 36 (virtio1-request)", "device veth0 (namespace of pid 1234)"
    why: str


@dataclass(frozen=True, slots=True)
class Balancer:
    """A running irqbalance: the CPUs it keeps IRQs off and the IRQs it leaves alone (sources/irqbalance.py)."""

    pid: int
    banned_cpus: tuple[int, ...] = ()
    banned_by: str = "unknown"  # "IRQBALANCE_BANNED_CPULIST=2-3 (/etc/default/irqbalance)", its default, ...
    banned_irqs: tuple[int, ...] = ()


def balancer_warning(b: Balancer, quiet: tuple[int, ...], placed: Iterable[int]) -> str | None:
    """What a running irqbalance will undo of a placement that keeps `quiet` free and pins `placed`; None: nothing."""
    open_cpus = tuple(c for c in quiet if c not in b.banned_cpus)
    free = sorted(set(placed) - set(b.banned_irqs))
    parts = []
    if open_cpus:
        banned = format_cpulist(b.banned_cpus) or "none"
        bans = f"it bans CPUs {banned}: {b.banned_by}" if b.banned_by != "unknown" else "what it bans was not read"
        parts.append(f"may put IRQs on quiet CPUs {format_cpulist(open_cpus)} ({bans}): "
                     f"set IRQBALANCE_BANNED_CPULIST={format_cpulist(quiet)} in its environment file "
                     "(/etc/default/irqbalance or /etc/sysconfig/irqbalance; IRQBALANCE_BANNED_CPUS on irqbalance < 1.8) and restart it")
    if free:
        parts.append("will overwrite the affinities of IRQs " + ",".join(map(str, free))
                     + ": ban them (" + " ".join(f"--banirq={i}" for i in free) + " in IRQBALANCE_ARGS)")
    if not parts:
        return None
    return f"irqbalance (pid {b.pid}) is running and " + "; and ".join(parts) + ", or stop it"


@dataclass(frozen=True, slots=True)
class Placement:
    housekeeping: tuple[int, ...]
    quiet: tuple[int, ...]
    writes: tuple[PlaceWrite, ...]
    left_alone: tuple[LeftAlone, ...]
    warnings: tuple[str, ...]
    vector_source: str = ""  # where the free vectors per CPU came from (x86); "" elsewhere


def netns_name(label: str) -> str | None:
    """The `ip netns` name in a map's namespace label ("netns x" -> "x"); None for "host"."""
    return label[len("netns "):] if label.startswith("netns ") else None


def _local(cpus: tuple[int, ...], node: int | None, nodes: Mapping[int, tuple[int, ...]]) -> tuple[int, ...]:
    """The housekeeping CPUs on the device's NUMA node; all of them when it has none or none there."""
    if node is None or node < 0 or node not in nodes:
        return cpus
    local = tuple(c for c in cpus if c in nodes[node])
    return local or cpus


def _irq_name(row: IrqRow) -> str:
    return f"IRQ {row.irq}" + (f" ({row.actions[0]})" if row.actions else "")


def _queue_irqs(rows: Iterable[IrqRow]) -> dict[int, list[IrqRow]]:
    out: dict[int, list[IrqRow]] = {}
    for row in rows:
        if row.queue is not None:
            out.setdefault(row.queue, []).append(row)
    return out


def _place_irq(row: IrqRow, cpus: tuple[int, ...], why: str, online: Collection[int] | None,
               writes: list[PlaceWrite], alone: list[LeftAlone], budget: VectorBudget | None = None) -> None:
    refusal = preflight(row, cpus, online)
    if refusal is None and row.movable is not None and budget is not None:
        refusal = budget.take(row, cpus)
    if refusal is not None:
        alone.append(LeftAlone(_irq_name(row), refusal))
    elif row.movable is None:
        alone.append(LeftAlone(_irq_name(row), row.why or "cannot tell whether it can move"))
    else:
        writes.append(PlaceWrite("affinity", cpus, why, irq=int(row.irq), current=row.affinity))


def _device(nd: NetDeviceMap, rows: Mapping[str, IrqRow], hk: tuple[int, ...], m: IrqMap,
            writes: list[PlaceWrite], alone: list[LeftAlone], budget: VectorBudget | None) -> None:
    dev = nd.device
    netns = netns_name(nd.namespace)
    if nd.namespace != "host" and netns is None:
        alone.append(LeftAlone(f"device {dev.name} ({nd.namespace})", "its namespace has no `ip netns` name to enter it by"))
        return
    own = [rows[i] for i in nd.irqs if i in rows]
    node = next((r.device_node for r in own if r.device_node is not None), dev.numa_node)
    local = _local(hk, node, m.nodes)
    where = f"NUMA node {node}'s housekeeping CPUs" if local != hk else "the housekeeping CPUs"
    by_queue = _queue_irqs(own)
    cpu_of: dict[int, int] = {}
    for n, q in enumerate(sorted(by_queue)):
        cpu_of[q] = local[n % len(local)]
        before = len(writes)
        for row in by_queue[q]:
            why = f"{dev.name} {row.role} queue {q}: one queue per CPU over {where} ({format_cpulist(local)})"
            _place_irq(row, (cpu_of[q],), why, m.online, writes, alone, budget)
        if len(writes) == before:
            # Nothing moved (managed, or unknown): RPS/XPS follow where the kernel keeps the IRQ.
            kept = [c for r in by_queue[q] for c in (r.effective_affinity or r.affinity or ()) if c in hk]
            cpu_of[q] = kept[0] if kept else cpu_of[q]
    for row in (r for r in own if r.queue is None):  # queue IRQs were placed (or left alone) above
        if row.movable is False:
            alone.append(LeftAlone(_irq_name(row), row.why or "cannot move"))
        elif set(row.affinity or ()) - set(local):
            _place_irq(row, local, f"{dev.name}'s other IRQ: onto {where}", m.online, writes, alone, budget)

    def cpu_for(i: int) -> int:
        return cpu_of[i] if i in cpu_of else local[i % len(local)]

    for rxq in dev.rx_queues:
        if rxq.rps_cpus is not None:
            writes.append(PlaceWrite("rps", (cpu_for(rxq.index),), f"{dev.name} rx-{rxq.index}: steer to its queue's CPU",
                                     dev=dev.name, queue=rxq.index, netns=netns, current=rxq.rps_cpus))
    for txq in dev.tx_queues:
        if txq.xps_cpus is not None:
            writes.append(PlaceWrite("xps", (cpu_for(txq.index),), f"{dev.name} tx-{txq.index}: transmit from its queue's CPU",
                                     dev=dev.name, queue=txq.index, netns=netns, current=txq.xps_cpus))


def napi_thread_device(comm: str) -> str:
    """The device of a napi/DEV-ID comm (net/core/dev.c, napi_kthread_create(): "napi/%s-%d")."""
    name = comm[len("napi/"):]
    return name.rsplit("-", 1)[0] if "-" in name else name


def _napi_threads(tasks: Iterable[TaskInfo], m: IrqMap, hk: tuple[int, ...], quiet: tuple[int, ...],
                  devices: Collection[str], writes: list[PlaceWrite], alone: list[LeftAlone]) -> None:
    """Every napi/DEV-ID kthread allowed on a quiet CPU: onto its device's NUMA-local housekeeping CPUs."""
    by_pid = {row.thread.pid: nd for nd in m.netdevs for row in nd.napis if row.thread is not None}
    for t in tasks:
        if t.kind != "napi":
            continue
        nd = by_pid.get(t.pid)
        dev = nd.device.name if nd is not None else napi_thread_device(t.comm)
        if devices and dev not in devices:
            continue
        what = f"thread {t.comm} (pid {t.pid})"
        if t.allowed_cpus is None:
            alone.append(LeftAlone(what, "its allowed CPUs were not read"))
            continue
        on_quiet = set(t.allowed_cpus) & set(quiet)
        if not on_quiet:
            continue
        node = nd.device.numa_node if nd is not None else None
        local = _local(hk, node, m.nodes)
        onto = f"NUMA node {node}'s housekeeping CPUs" if local != hk else "the housekeeping CPUs"
        writes.append(PlaceWrite("thread-affinity", local, f"{dev}'s threaded NAPI may run on quiet CPU "
                                 f"{format_cpulist(on_quiet)}: onto {onto}", pid=t.pid, comm=t.comm, current=t.allowed_cpus))


def plan_placement(m: IrqMap, quiet: Iterable[int], *, housekeeping: Iterable[int] | None = None,
                   devices: Collection[str] = (), irqbalance_pid: int | None = None,
                   balancer: Balancer | None = None, vectors: VectorMatrix | None = None,
                   managed_irq_cpus: Collection[int] = (), tasks: Iterable[TaskInfo] = ()) -> Placement:
    """The plan for map m: quiet CPUs are kept free; housekeeping defaults to online minus quiet.

    `devices` limits the plan to those network devices (by name, in any namespace) and their
    IRQs; empty: every device but loopback, and every other movable IRQ on a quiet CPU.
    A running irqbalance (`balancer`, or only its pid: bans unknown) is a warning naming what
    it will undo: quiet CPUs it is not banned from, placed IRQs it does not leave alone.
    Each affinity write also takes a vector on x86 (`vectors`, from debugfs; estimated from
    the map when None): a write the kernel would refuse with ENOSPC is left alone.
    `managed_irq_cpus` (isolcpus=managed_irq,LIST) say where managed IRQs may still fire.
    `tasks` (sources/tasks.py): the napi/DEV-ID threads among them are placed too.
    """
    quiet_t = tuple(sorted(set(quiet)))
    online = m.online or ()
    hk = tuple(sorted(set(housekeeping) if housekeeping is not None else set(online) - set(quiet_t)))
    if not hk:
        raise ValueError("no housekeeping CPU: every online CPU is isolated (give --cpus-housekeeping)")
    rows = {r.irq: r for r in m.rows if r.numbered}
    matrix = vectors if vectors is not None else estimate_matrix(m)
    budget = VectorBudget(matrix) if matrix is not None else None
    writes: list[PlaceWrite] = []
    alone: list[LeftAlone] = []
    chosen = [nd for nd in m.netdevs if (nd.device.name in devices if devices else nd.device.name != "lo")]
    for nd in chosen:
        _device(nd, rows, hk, m, writes, alone, budget)
    placed = {str(w.irq) for w in writes if w.irq is not None} | {a.what.split()[1] for a in alone if a.what.startswith("IRQ ")}
    if not devices:
        for row in rows.values():
            if row.irq in placed:
                continue
            on_quiet = set(row.effective_affinity or row.affinity or ()) & set(quiet_t)
            if row.movable is False:
                if row.managed and managed_irq_cpus:
                    landing, how = managed_landing(row.affinity or (), managed_irq_cpus, online)
                    if set(row.affinity or ()) & set(quiet_t):
                        alone.append(LeftAlone(_irq_name(row), f"{row.why}; {how}"
                                               + (f": it may fire on quiet CPU {format_cpulist(set(landing) & set(quiet_t))}"
                                                  if set(landing) & set(quiet_t) else "")))
                elif on_quiet:
                    alone.append(LeftAlone(_irq_name(row), f"{row.why}; it may fire on quiet CPU {format_cpulist(on_quiet)} "
                                           "(isolcpus=managed_irq keeps managed IRQs off isolated CPUs where it can)"))
                continue
            if set(row.affinity or ()) & set(quiet_t):
                local = _local(hk, row.device_node, m.nodes)
                onto = f"NUMA node {row.device_node}'s housekeeping CPUs" if local != hk else "the housekeeping CPUs"
                _place_irq(row, local, f"reaches quiet CPU {format_cpulist(set(row.affinity or ()) & set(quiet_t))}: onto {onto}",
                           m.online, writes, alone, budget)
    _napi_threads(tasks, m, hk, quiet_t, devices, writes, alone)
    warnings = []
    if balancer is None and irqbalance_pid is not None:
        balancer = Balancer(irqbalance_pid)
    if balancer is not None:
        w = balancer_warning(balancer, quiet_t, (x.irq for x in writes if x.irq is not None))
        if w is not None:
            warnings.append(w)
    return Placement(hk, quiet_t, tuple(writes), tuple(alone), tuple(warnings), matrix.source if matrix is not None else "")
