"""The causal model: each CPU's interrupt time by vector, traced back to its sources and forward to its harm. Pure.

DESIGN.md's chain: source (a device queue, RPS, a sender's backlog, a timer, an IPI) -> vector
on a CPU -> time taken there -> harm (tasks that waited, ksoftirqd, drops at NIC / backlog /
budget / socket, in whichever network namespace) -> fix. analysis/cause_findings.py turns a
CausalModel into findings with actions; this module only measures and links.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from irqlab.analysis.delta import Rates
from irqlab.analysis.netdelta import DeviceRates, NamespaceRates, NetRates, SocketDrops, ThreadShare
from irqlab.analysis.thresholds import Thresholds
from irqlab.cpulist import format_cpulist, format_cpumask
from irqlab.model.histogram import Histogram
from irqlab.model.net import NetNamespace, NetState
from irqlab.model.trace_result import Handler, TraceResult
from irqlab.units import NS_PER_S, format_rate

# --- time per vector --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VectorTime:
    """One vector's share of one CPU over the sample."""

    vector: str  # a softirq name, "hardirq" (every hard handler), or "NAPI thread"
    cpu: int
    runs_per_s: float
    pct: float  # of the CPU
    measured: bool  # True: from the trace or schedstat; False: rates x per-vector cost
    task_share: float | None = None  # share of its runs at local_bh_enable() in task context (trace only)


def _traced_hist(h: Handler, cpu: int) -> Histogram | None:
    """A handler's net time on cpu (minus the hard IRQs nested in it) where the trace has it, else its gross time."""
    hist = h.net.get(cpu) or h.gross.get(cpu)
    return hist if hist is not None and hist.count else None


def _traced_times(trace: TraceResult) -> dict[int, list[VectorTime]]:
    """Handler time per CPU from a trace window: every softirq vector, hard IRQs summed; never over 100 %.

    A softirq's gross time (exit - entry) includes the hard interrupts that arrived while it ran,
    which the hard IRQs' own time counts again; the net histograms leave them out
    (trace_aggregate.py). A CPU's shares are scaled down to 100 % when they still exceed it (a
    handler cut at the window's edges).
    """
    out: dict[int, list[VectorTime]] = {}
    win_s = trace.window_ns / NS_PER_S
    if win_s <= 0:
        return out
    for h in trace.softirqs:
        for cpu in h.gross:
            hist = _traced_hist(h, cpu)
            if hist is not None:
                task, _ = h.context_share("other", (cpu,))
                runs = h.gross[cpu].count if h.gross.get(cpu) is not None else hist.count
                out.setdefault(cpu, []).append(VectorTime(h.name, cpu, runs / win_s, 100.0 * hist.sum_ns / trace.window_ns, True, task))
    for cpu in trace.cpus:
        hists = [x for h in trace.hardirqs if (x := _traced_hist(h, cpu)) is not None]
        if hists:
            runs = sum(x.count for x in hists)
            ns = sum(x.sum_ns for x in hists)
            out.setdefault(cpu, []).append(VectorTime("hardirq", cpu, runs / win_s, 100.0 * ns / trace.window_ns, True))
    return out


def _capped(times: list[VectorTime]) -> list[VectorTime]:
    total = sum(v.pct for v in times)
    if total <= 100.0:
        return times
    return [replace(v, pct=v.pct * 100.0 / total) for v in times]


def _stat_pct(rates: Rates, cpu: int, name: str) -> float | None:
    c = rates.cpu
    if c is None or cpu not in c.cpus:
        return None
    v = float(c.field(name)[c.cpus.index(cpu)])
    return None if math.isnan(v) else v


def _estimated_times(rates: Rates, t: Thresholds) -> dict[int, list[VectorTime]]:
    """Per-vector rates x per-vector cost, scaled to /proc/stat's softirq (irq) share when it is known."""
    out: dict[int, list[VectorTime]] = {}
    cost = dict(t.softirq_cost_ns)
    s = rates.softirqs
    if s is not None:
        for j, cpu in enumerate(s.cpus):
            runs = {v: float(np.nan_to_num(s.rate[i, j])) for i, v in enumerate(s.vectors)}
            raw = {v: r * cost.get(v, 1_000) / NS_PER_S * 100.0 for v, r in runs.items() if r > 0}
            out[cpu] = _scaled(cpu, runs, raw, _stat_pct(rates, cpu, "softirq"))
    irq = rates.interrupts
    if irq is not None:
        per_cpu = irq.cpu_rate()
        for j, cpu in enumerate(irq.cpus):
            r = float(per_cpu[j])
            if r > 0:
                raw_pct = r * t.hardirq_cost_ns / NS_PER_S * 100.0
                stat = _stat_pct(rates, cpu, "irq")
                out.setdefault(cpu, []).append(VectorTime("hardirq", cpu, r, stat if stat else raw_pct, False))
    return out


def _scaled(cpu: int, runs: dict[str, float], raw: dict[str, float], stat_pct: float | None) -> list[VectorTime]:
    total = sum(raw.values())
    k = stat_pct / total if stat_pct and total > 0 else 1.0
    return [VectorTime(v, cpu, runs[v], p * k, False) for v, p in raw.items()]


def _napi_threads(threads: tuple[ThreadShare, ...]) -> dict[int, list[VectorTime]]:
    """Threaded NAPI (napi/DEV-N kthreads): receive work that runs as a thread, measured by schedstat."""
    out: dict[int, list[VectorTime]] = {}
    for th in threads:
        if th.thread.kthread and th.thread.comm.startswith("napi/") and th.run_pct > 0:
            out.setdefault(th.cpu, []).append(VectorTime(f"NAPI thread {th.thread.comm}", th.cpu, 0.0, th.run_pct, True))
    return out


def vector_times(rates: Rates, threads: tuple[ThreadShare, ...], trace: TraceResult | None, t: Thresholds) -> dict[int, list[VectorTime]]:
    """Each CPU's interrupt-path time by vector, largest first: measured when a trace is given."""
    base = _traced_times(trace) if trace is not None else _estimated_times(rates, t)
    for cpu, extra in _napi_threads(threads).items():
        base.setdefault(cpu, []).extend(extra)
    return {cpu: sorted(_capped(v), key=lambda x: -x.pct) for cpu, v in sorted(base.items())}


# --- sources ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """Where a vector's work on a CPU comes from."""

    kind: str  # "nic-queue", "rps", "backlog", "disk-queue", "timer", "ipi", "napi-thread", "itself"
    text: str  # one evidence line
    weight: float  # its load on this CPU (events/s), to pick the main source
    namespace: NetNamespace | None = None
    device: str | None = None
    queue: int | None = None
    irq: str | None = None  # the /proc/interrupts row: "38", "CAL"
    mask: tuple[int, ...] | None = None  # rps_cpus of an "rps" source, smp_affinity of a "nic-queue"
    pid: int | None = None  # a "napi-thread" source's thread, a "backlog" source's sender
    peer: Peer | None = None  # a "backlog" source's sending end of a veth pair
    target: bool = True  # an "rps" source: False on the CPU that sends the IPIs, not the one they steer to


# rx-queue interrupt names: "eth0-TxRx-0" (ixgbe, i40e), "eth0-rx-0" (igb), "virtio2-input.0"
# (virtio_net: virtio device, not netdev name), "mlx5_comp0" has no netdev name and is left out.
_RX_QUEUE = re.compile(r"^(?P<dev>.+?)-(?:TxRx|rx|RX|Rx|txrx|fp)-(?P<q>\d+)$|^(?P<virtio>virtio\d+)-input\.(?P<vq>\d+)$")
_DISK_QUEUE = re.compile(r"^(nvme\d+q\d+|ahci|ata_piix|virtio\d+-req\.\d+|mmc\d+|sdhci|megasas|mpt3sas|xhci_hcd|ata\d+)")


def _virtio_net_order(ns: NamespaceRates | None) -> list[str]:
    """The host's virtio_net devices in probe order: by ifindex (register_netdev() order), then name."""
    devs = [d.device for d in (ns.devices if ns else ()) if d.device.driver == "virtio_net"]
    return [d.name for d in sorted(devs, key=lambda d: (d.ifindex if d.ifindex is not None else 1 << 30, d.name))]


def nic_queues(rates: Rates, host: NamespaceRates | None) -> dict[str, tuple[str, int]]:
    """/proc/interrupts row -> (device, rx queue) of every NIC receive-queue interrupt.

    By action name: "eth0-TxRx-0", "eth0-rx-0" name their netdev; a single-queue NIC's one
    interrupt is named after the netdev itself ("eth0", e1000e without MSI-X), its queue 0.
    virtio_net names its interrupts after the virtio device ("virtio2-input.0",
    vp_find_vqs_msix(), drivers/virtio/virtio_pci_common.c), not the netdev: virtio devices
    are numbered and their netdevs registered in probe order, so the k-th virtio device with
    input queues is the k-th virtio_net netdev by ifindex when the counts agree; otherwise the
    virtio name is kept.
    """
    irq = rates.interrupts
    lines = irq.lines if irq is not None else ()
    names = {d.device.name for d in (host.devices if host else ()) if d.device.name != "lo"}
    virtio_order = _virtio_net_order(host)
    out: dict[str, tuple[str, int]] = {}
    virtio: dict[str, tuple[str, int]] = {}
    for line in lines:
        for action in line.actions:
            m = _RX_QUEUE.match(action)
            if m is not None and m.group("virtio"):
                virtio[line.irq] = (m.group("virtio"), int(m.group("vq")))
            elif m is not None:
                out.setdefault(line.irq, (m.group("dev"), int(m.group("q"))))
            elif action in names:
                out.setdefault(line.irq, (action, 0))
    numbers = sorted({v for v, _ in virtio.values()}, key=lambda v: int(v.removeprefix("virtio")))
    by_number = dict(zip(numbers, virtio_order, strict=True)) if len(numbers) == len(virtio_order) else {}
    for row, (v, q) in virtio.items():
        out.setdefault(row, (by_number.get(v, v), q))
    return out


@dataclass(frozen=True, slots=True)
class CpuContext:
    """Per-CPU rates the sources look up: rows of /proc/interrupts and softnet columns."""

    irq_rate: dict[str, float]  # row -> rate on this CPU (rows that fired)
    actions: dict[str, tuple[str, ...]]  # row -> its action names (every row)
    received_rps: float
    processed: float
    queues: dict[str, tuple[str, int]]  # row -> (device, rx queue) of the NIC queue interrupts (nic_queues())


def _cpu_context(rates: Rates, cpu: int, host: NamespaceRates | None) -> CpuContext:
    irq_rate: dict[str, float] = {}
    actions: dict[str, tuple[str, ...]] = {}
    irq = rates.interrupts
    if irq is not None and cpu in irq.cpus:
        j = irq.cpus.index(cpu)
        for k, line in enumerate(irq.lines):
            actions[line.irq] = line.actions
            r = float(np.nan_to_num(irq.rate[k, j]))
            if r > 0:
                irq_rate[line.irq] = r
    rps = processed = 0.0
    sn = rates.softnet
    if sn is not None and cpu in sn.cpus:
        i = sn.cpus.index(cpu)
        rps = float(np.nan_to_num(sn.field("received_rps")[i]))
        processed = float(np.nan_to_num(sn.field("processed")[i]))
    return CpuContext(irq_rate, actions, rps, processed, nic_queues(rates, host))


def _affinity_text(rates: Rates, irq: str) -> tuple[str, tuple[int, ...] | None]:
    info = rates.after.irqinfo.get(int(irq)) if irq.isdigit() else None
    if info is None or info.affinity is None:
        return "", None
    eff = f", effective {format_cpulist(info.effective_affinity)}" if info.effective_affinity else ""
    managed = ", managed by the kernel" if info.managed else ""
    return f" (smp_affinity_list {format_cpulist(info.affinity)}{eff}{managed})", info.affinity


def _nic_source(rates: Rates, ctx: CpuContext, cpu: int, host: NamespaceRates | None, irq: str, r: float) -> Source | None:
    """The NIC queue an interrupt row serves, as a source of work on cpu; None when the row is no NIC queue."""
    if irq not in ctx.queues:
        return None
    dev, q = ctx.queues[irq]
    aff, mask = _affinity_text(rates, irq)
    action = ", ".join(ctx.actions.get(irq, ())) or irq
    text = f"NIC queue: IRQ {irq} {action} {format_rate(r)}/s on CPU{cpu}{aff}" + irq_suspension_note(rates.after.net, irq)
    return Source("nic-queue", text, r, host.namespace if host else None, dev, q, irq, mask)


def irq_suspension_note(net: NetState | None, irq: str) -> str:
    """Why a NIC queue's IRQ may be quiet on purpose: its NAPI instance defers or suspends it.

    With irq-suspend-timeout (Linux 6.13, net/core/dev.c napi_suspend_irqs()) an application's
    epoll busy poll keeps the IRQ masked while it finds events, and with defer-hard-irqs and
    gro-flush-timeout the kernel re-polls from a timer instead of re-enabling it: a rate that
    collapses then is neither a dead queue nor the end of a storm.
    """
    if net is None or not net.views or not irq.isdigit():
        return ""
    napi = next((n for n in net.views[0].napis if n.irq == int(irq)), None)
    if napi is None or not napi.suspends_irqs:
        return ""
    if napi.irq_suspend_timeout_ns:
        how = (f"irq-suspend-timeout {napi.irq_suspend_timeout_ns} ns: while an application busy-polls it "
               "(epoll), this IRQ stays off")
    else:
        how = (f"defer-hard-irqs {napi.defer_hard_irqs}, gro-flush-timeout {napi.gro_flush_timeout_ns} ns: "
               "a timer re-polls it instead of this IRQ")
    return f"; its NAPI {napi.id} has {how}, so a low rate is not a dead queue"


def _nic_sources(rates: Rates, ctx: CpuContext, cpu: int, host: NamespaceRates | None) -> list[Source]:
    return [s for irq, r in ctx.irq_rate.items() if (s := _nic_source(rates, ctx, cpu, host, irq, r)) is not None]


def _rps_sources(net: NetRates, ctx: CpuContext, cpu: int) -> list[Source]:
    out = []
    for ns in net.namespaces:
        for d in ns.devices:
            rx = d.of("rx_packets")
            for q in d.device.rx_queues:
                if not q.rps_cpus or cpu not in q.rps_cpus or rx <= 0:
                    continue
                mask = format_cpumask(q.rps_cpus)
                share = 1.0 / len(q.rps_cpus)
                ipis = ctx.irq_rate.get("CAL", 0.0)
                text = (
                    f"RPS: rps_cpus={mask} on {d.device.name} rx-{q.index} ({ns.namespace.label}) <- "
                    f"{format_rate(rx)} packets/s; received_rps {format_rate(ctx.received_rps)}/s on CPU{cpu}"
                    + (f", function-call IPIs (CAL) {format_rate(ipis)}/s" if ipis else "")
                )
                weight = rx * share  # packets, like softnet's processed that the backlog residual is taken from
                out.append(Source("rps", text, weight, ns.namespace, d.device.name, q.index, None, q.rps_cpus))
    return out


# --- local senders: veth pairs and loopback ------------------------------------------------------
#
# veth_xmit() (drivers/net/veth.c, v6.18) hands each packet to its peer with __netif_rx() unless
# the peer's rx queue has a NAPI instance (GRO or XDP on) and the packet is eligible for GRO
# (veth_skb_is_eligible_for_gro(): never a locally sent UDP datagram from a TSO-capable sender
# unless the peer has rx-gro-list or rx-udp-gro-forwarding). netif_rx_internal() (net/core/dev.c)
# then queues it on the backlog of the CPU that is sending, unless RPS picks another
# (get_rps_cpu()), and raises NET_RX there; the softirq runs when the sender's transmit path
# re-enables bottom halves (local_bh_enable() in task context). The veth NAPI path also raises
# NET_RX on the sending CPU (__veth_xdp_flush() -> napi_schedule()). Either way the receive work
# of a veth runs on the CPU of whoever sends into its peer.

PAIR_TOLERANCE = 0.05  # rx of one end and tx of the other, read a moment apart, agree within 5 %


def _virtual(d: DeviceRates) -> bool:
    """A device with no bus device (veth, ifb, ...: no device/driver link in sysfs), or one the source named veth."""
    return d.device.driver in (None, "veth") and d.device.name != "lo"


@dataclass(frozen=True, slots=True)
class Peer:
    """The other end of a veth pair, found by its transmit rate: rx_packets of one end counts what the other sent."""

    namespace: NetNamespace
    device: str
    tx_per_s: float


def veth_peers(net: NetRates | None) -> dict[tuple[int, str], Peer]:
    """(namespace inode, device) of each receiving virtual device -> its sending end.

    veth_get_stats64() (drivers/net/veth.c) reports as a device's rx_packets what its peer
    transmitted, so the peer is the virtual device, in any namespace, whose tx_packets rate
    matches within PAIR_TOLERANCE. sysfs names no driver for a veth (it has no parent device),
    so the pair is recognised by its counters.
    """
    out: dict[tuple[int, str], Peer] = {}
    ends = [(ns, d) for ns in (net.namespaces if net else ()) for d in ns.devices if _virtual(d)]
    for ns, d in ends:
        rx = d.of("rx_packets")
        if rx <= 0:
            continue
        best = min(
            ((abs(o.of("tx_packets") - rx), ons, o) for ons, o in ends if o is not d and o.of("tx_packets") > 0),
            key=lambda x: x[0], default=None,
        )
        if best is not None and best[0] <= PAIR_TOLERANCE * rx:
            out[(ns.namespace.inode, d.device.name)] = Peer(best[1].namespace, best[2].device.name, best[2].of("tx_packets"))
    return out


def _local_receiver(d: DeviceRates, ns: NamespaceRates, peers: dict[tuple[int, str], Peer]) -> bool:
    """Loopback, or a veth: its packets enter the backlog of the sending CPU."""
    return d.of("rx_packets") > 0 and (d.device.name == "lo" or d.device.driver == "veth" or (ns.namespace.inode, d.device.name) in peers)


def _steered(d: DeviceRates) -> bool:
    return any(q.rps_cpus for q in d.device.rx_queues)


def _senders(threads: tuple[ThreadShare, ...], cpu: int, peer: Peer | None, receivers: set[int]) -> list[ThreadShare]:
    """The tasks that ran on cpu and may be the senders: not kernel threads, not the receiving sockets' owners.

    A thread is placed on the CPU it last ran on; the sending namespace's first processes
    (their comms) narrow the list when it is another namespace than the host's.
    """
    users = [th for th in threads if th.cpu == cpu and not th.thread.kthread and th.run_pct >= 1.0 and th.thread.pid not in receivers]
    if peer is not None and not peer.namespace.host and peer.namespace.comms:
        named = [th for th in users if th.thread.comm in peer.namespace.comms]
        users = named or users
    return sorted(users, key=lambda th: -th.run_pct)


def _sender_text(senders: list[ThreadShare], cpu: int) -> str:
    if not senders:
        return f"; no sending task found on CPU{cpu}"
    who = ", ".join(f"{th.thread.comm} (pid {th.thread.pid}) ran {th.run_pct:.0f} %" for th in senders[:2])
    return f" <- sent by {who} on CPU{cpu}"


def _receivers(ns: NamespaceRates) -> set[int]:
    return {pid for s in ns.sockets for pid in s.pids}


def _backlog_sources(net: NetRates, residual: float, cpu: int, threads: tuple[ThreadShare, ...], vt: VectorTime) -> list[Source]:
    out = []
    peers = veth_peers(net)
    local = [(ns, d) for ns in net.namespaces for d in ns.devices if not _steered(d) and _local_receiver(d, ns, peers)]
    total = sum(d.of("rx_packets") for _, d in local) or 1.0
    local = [(ns, d) for ns, d in local if d.of("rx_packets") >= 0.01 * total]  # ARP and neighbour chatter are no source
    how = f"; {vt.task_share:.0%} of NET_RX runs on CPU{cpu} were at local_bh_enable() in task context" if vt.task_share is not None else ""
    for ns, d in local:
        peer = peers.get((ns.namespace.inode, d.device.name))
        share = min(residual * d.of("rx_packets") / total, d.of("rx_packets"))
        senders = _senders(threads, cpu, peer, _receivers(ns))
        pair = (f"veth {peer.device} ({peer.namespace.label}) -> {d.device.name} ({ns.namespace.label})" if peer is not None
                else f"{d.device.name} ({ns.namespace.label})")
        text = (f"backlog of CPU{cpu}: {pair}, {format_rate(d.of('rx_packets'))} packets/s in all, "
                f"{format_rate(share)}/s processed on CPU{cpu} (softnet){how}" + _sender_text(senders, cpu)
                + _idle_napi_thread(d, threads))
        pid = senders[0].thread.pid if senders else None
        out.append(Source("backlog", text, share, ns.namespace, d.device.name, 0, None, None, pid, peer))
    return out


def _idle_napi_thread(d: DeviceRates, threads: tuple[ThreadShare, ...]) -> str:
    """threaded=1 on a veth whose packets still went through the backlog: its NAPI thread idled."""
    if not d.device.threaded:
        return ""
    napi = [th for th in threads if th.thread.kthread and th.thread.comm.startswith(f"napi/{d.device.name}-")]
    ran = sum(th.run_pct for th in napi)
    if ran >= 1.0:
        return ""
    who = ", ".join(f"{th.thread.comm} (pid {th.thread.pid})" for th in napi[:2]) or f"napi/{d.device.name}-N"
    return (f"; threaded=1 on {d.device.name}, but {who} ran {ran:.0f} %: veth polls with NAPI only packets eligible for GRO "
            "(a locally sent UDP datagram is not, unless the receiver has rx-udp-gro-forwarding or rx-gro-list on), "
            "so these went through the sender's backlog in NET_RX")


def _rps_ipi_sources(net: NetRates, rates: Rates, ctx: CpuContext, vt: VectorTime, threads: tuple[ThreadShare, ...]) -> list[Source]:
    """NET_RX on a CPU that processes few packets itself while RPS steers a queue elsewhere: it sends the IPIs.

    netif_rx_internal() queues a steered packet on the target CPU's backlog and, through
    napi_schedule_rps(), raises NET_RX on the sending CPU, whose net_rx_action() then sends the
    function-call IPIs (net_rps_send_ipi(), net/core/dev.c) that the target counts as received_rps.
    """
    cpu = vt.cpu
    sn = rates.softnet
    if sn is None or ctx.processed > 0.5 * max(vt.runs_per_s, 1.0):
        return []
    targets = {c: float(np.nan_to_num(sn.field("received_rps")[i])) for i, c in enumerate(sn.cpus) if c != cpu}
    peers = veth_peers(net)
    out = []
    for ns in net.namespaces:
        for d in ns.devices:
            for q in d.device.rx_queues:
                if not q.rps_cpus or cpu in q.rps_cpus or d.of("rx_packets") <= 0:
                    continue
                ipis = sum(targets.get(c, 0.0) for c in q.rps_cpus)
                if ipis <= 0:
                    continue
                senders = _senders(threads, cpu, peers.get((ns.namespace.inode, d.device.name)), _receivers(ns))
                text = (f"RPS IPIs: rps_cpus={format_cpumask(q.rps_cpus)} on {d.device.name} rx-{q.index} ({ns.namespace.label}) steers "
                        f"{format_rate(d.of('rx_packets'))} packets/s to {_cpu_list(q.rps_cpus)}; NET_RX on CPU{cpu} only sends the IPIs "
                        f"(received_rps {format_rate(ipis)}/s there) and processes {format_rate(ctx.processed)} packets/s itself"
                        + _sender_text(senders, cpu))
                out.append(Source("rps", text, vt.runs_per_s or ipis, ns.namespace, d.device.name, q.index, None, q.rps_cpus,
                                  senders[0].thread.pid if senders else None, target=False))
    return out


def _cpu_list(cpus: tuple[int, ...]) -> str:
    return f"CPU{cpus[0]}" if len(cpus) == 1 else f"CPUs {format_cpulist(cpus)}"


def _host(net: NetRates | None) -> NamespaceRates | None:
    return net.namespaces[0] if net and net.namespaces else None


def _net_rx_sources(rates: Rates, net: NetRates | None, threads: tuple[ThreadShare, ...], vt: VectorTime, ctx: CpuContext) -> list[Source]:
    cpu, runs = vt.cpu, vt.runs_per_s
    host = _host(net)
    out = _nic_sources(rates, ctx, cpu, host)
    if net is not None:
        out += _rps_sources(net, ctx, cpu)
        out += _rps_ipi_sources(net, rates, ctx, vt, threads)
        explained = sum(s.weight for s in out)
        residual = max(runs, ctx.processed) - explained
        if residual > 0.25 * max(runs, 1.0):
            out += _backlog_sources(net, min(residual, ctx.processed) if ctx.processed > 0 else residual, cpu, threads, vt)
    return out


def _row_sources(kind: str, ctx: CpuContext, rows: tuple[str, ...], cpu: int, what: str) -> list[Source]:
    return [
        Source(kind, f"{what}: {row} {format_rate(ctx.irq_rate[row])}/s on CPU{cpu}", ctx.irq_rate[row], irq=row)
        for row in rows
        if ctx.irq_rate.get(row, 0.0) > 0
    ]


def _disk_sources(ctx: CpuContext, cpu: int) -> list[Source]:
    out = []
    for irq, r in ctx.irq_rate.items():
        names = [a for a in ctx.actions.get(irq, ()) if _DISK_QUEUE.match(a)]
        if names:
            out.append(Source("disk-queue", f"disk queue: IRQ {irq} {', '.join(names)} {format_rate(r)}/s on CPU{cpu}", r, irq=irq))
    return out


def _lands_on(rates: Rates, irq: str, cpu: int) -> bool:
    """The row's interrupts are delivered to cpu alone (its effective affinity, else its smp_affinity)."""
    info = rates.after.irqinfo.get(int(irq)) if irq.isdigit() else None
    mask = (info.effective_affinity or info.affinity) if info is not None else None
    return mask == (cpu,)


def _hardirq_sources(rates: Rates, ctx: CpuContext, cpu: int, host: NamespaceRates | None) -> list[Source]:
    """The busiest rows on cpu; and every NIC queue whose interrupt lands there, even one that did not fire.

    A queue whose NAPI poll never ran keeps its interrupt masked (napi_schedule() is not called
    again until napi_complete_done() re-enables it), so a starved receive path shows no rate.
    """
    top = sorted(ctx.irq_rate.items(), key=lambda kv: -kv[1])[:3]
    out = []
    for irq, r in top:
        nic = _nic_source(rates, ctx, cpu, host, irq, r)
        what = "ipi" if not irq.isdigit() else "irq"
        out.append(nic or Source(what, f"IRQ {irq} {', '.join(ctx.actions.get(irq, ())) or ''} {format_rate(r)}/s on CPU{cpu}".replace("  ", " "), r, irq=irq))
    named = {irq for irq, _ in top}
    for irq in ctx.queues:
        if irq not in named and _lands_on(rates, irq, cpu):
            nic = _nic_source(rates, ctx, cpu, host, irq, ctx.irq_rate.get(irq, 0.0))
            out += [nic] if nic is not None else []
    return out


def _napi_thread_source(vt: VectorTime, threads: tuple[ThreadShare, ...], net: NetRates | None) -> list[Source]:
    comm = vt.vector.removeprefix("NAPI thread ")
    th = next((x for x in threads if x.thread.comm == comm and x.cpu == vt.cpu), None)
    dev = comm.removeprefix("napi/").rsplit("-", 1)[0]
    ns = next((n.namespace for n in (net.namespaces if net else ()) if any(d.device.name == dev for d in n.devices)), None)
    where = f" ({ns.label})" if ns else ""
    text = f"threaded NAPI: {comm} (pid {th.thread.pid if th else '?'}) polls {dev}{where}, {vt.pct:.0f} % of CPU{vt.cpu}"
    return [Source("napi-thread", text, vt.pct, ns, dev, None, None, None, th.thread.pid if th else None)]


def sources_of(vt: VectorTime, rates: Rates, net: NetRates | None, threads: tuple[ThreadShare, ...]) -> list[Source]:
    """The sources of one vector's work on one CPU, main one first."""
    ctx = _cpu_context(rates, vt.cpu, _host(net))
    if vt.vector == "NET_RX":
        out = _net_rx_sources(rates, net, threads, vt, ctx)
    elif vt.vector == "BLOCK":
        out = _disk_sources(ctx, vt.cpu)
    elif vt.vector in ("TIMER", "HRTIMER"):
        out = _row_sources("timer", ctx, ("LOC",), vt.cpu, "local timer")
    elif vt.vector == "SCHED":
        out = _row_sources("ipi", ctx, ("RES",), vt.cpu, "rescheduling IPIs")
    elif vt.vector == "hardirq":
        out = _hardirq_sources(rates, ctx, vt.cpu, _host(net))
    elif vt.vector.startswith("NAPI thread "):
        out = _napi_thread_source(vt, threads, net)
    else:
        out = []
    if not out:
        out = [Source("itself", f"{vt.vector} raised on CPU{vt.cpu} by its own users", vt.runs_per_s)]
    return sorted(out, key=lambda s: -s.weight)


# --- harm -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drop:
    """Packets lost (or, for "budget", passes cut short) at one layer, per second."""

    layer: str  # "nic", "backlog", "budget", "socket"
    rate_per_s: float
    text: str
    namespace: NetNamespace | None = None
    socket: SocketDrops | None = None

    @property
    def lost(self) -> float:
        """Packets lost per second (a squeeze loses none: the rest waits for the next pass)."""
        return 0.0 if self.layer == "budget" else self.rate_per_s


NIC_DROP_STATS: tuple[str, ...] = ("rx_dropped", "rx_missed_errors", "rx_fifo_errors")
# Per-section counters of packets a socket dropped. InErrors includes RcvbufErrors (both are
# counted for one drop in __udp_queue_rcv_skb(), net/ipv4/udp.c): only InErrors is summed.
SOCKET_DROP_COUNTERS: tuple[tuple[str, str], ...] = (
    ("Udp", "InErrors"),
    ("Udp6", "InErrors"),
    ("TcpExt", "TCPBacklogDrop"),
    ("TcpExt", "ListenDrops"),
    ("TcpExt", "TCPRcvQDrop"),
)
SOCKET_DETAIL_COUNTERS: tuple[tuple[str, str], ...] = (("Udp", "RcvbufErrors"), ("Udp6", "RcvbufErrors"))


def nic_drops(d: DeviceRates, ns: NetNamespace, backlog_per_s: float = 0.0) -> Drop | None:
    """The drops a device counted at its own layer; backlog_per_s of its rx_dropped were the backlog's.

    enqueue_to_backlog() (net/core/dev.c, v6.18) counts a packet it drops twice: in the CPU's
    softnet dropped and in the receiving device's rx_dropped (dev_core_stats_rx_dropped_inc()),
    so a netif_rx() device's rx_dropped repeats the backlog drops, which are harm already.
    """
    rx_dropped = max(0.0, d.of("rx_dropped") - backlog_per_s)
    rates = {"rx_dropped": rx_dropped} | {s: d.of(s) for s in NIC_DROP_STATS if s != "rx_dropped"}
    rate = sum(rates.values())
    if rate <= 0:
        return None
    parts = ", ".join(f"{s} {format_rate(v)}/s" + (" beyond the backlog's drops" if s == "rx_dropped" and backlog_per_s > 0 else "")
                      for s, v in rates.items() if v > 0)
    return Drop("nic", rate, f"NIC drops on {d.device.name} ({ns.label}): {parts}", ns)


def socket_drops(ns: NamespaceRates) -> list[Drop]:
    """The socket layer of one namespace: its MIB counters, and each UDP socket that dropped."""
    out = []
    for sec, name in SOCKET_DROP_COUNTERS:
        r = ns.counter(sec, name)
        if r > 0:
            detail = [f"{s} {n} {format_rate(ns.counter(s, n))}/s" for s, n in SOCKET_DETAIL_COUNTERS if s == sec and ns.counter(s, n) > 0]
            extra = f" ({', '.join(detail)})" if detail else ""
            out.append(Drop("socket", r, f"socket drops {format_rate(r)}/s: {sec} {name}{extra} ({ns.namespace.label})", ns.namespace))
    for s in ns.sockets:
        port = f"UDP{'' if s.socket.family == 4 else '6'} port {s.socket.local_port}"
        out.append(Drop("socket", 0.0, f"{port} ({s.owner}) dropped {format_rate(s.drops_per_s)}/s ({ns.namespace.label})", ns.namespace, s))
    return out


@dataclass(frozen=True, slots=True)
class Harm:
    """What one CPU's interrupt time cost: who waited, ksoftirqd, and drops at every layer."""

    cpu: int
    ksoftirqd_pct: float | None
    waited: tuple[ThreadShare, ...]  # tasks on this CPU that lost (lost_pct) >= wait_warn_pct, most first
    drops: tuple[Drop, ...]
    threads_known: bool

    @property
    def lost_per_s(self) -> float:
        return sum(d.lost for d in self.drops)

    @property
    def max_wait_pct(self) -> float:
        """The most any task lost: waiting for the CPU, or to the interrupts while it wanted it."""
        return max((th.lost_pct for th in self.waited), default=0.0)

    def any(self, t: Thresholds) -> bool:
        squeezed = any(d.layer == "budget" and d.rate_per_s >= t.squeeze_warn_rate for d in self.drops)
        return bool(self.waited) or self.lost_per_s > 0 or squeezed


def _softnet_drops(rates: Rates, cpu: int) -> list[Drop]:
    sn = rates.softnet
    if sn is None or cpu not in sn.cpus:
        return []
    i = sn.cpus.index(cpu)
    out = []
    backlog = float(np.nan_to_num(sn.field("dropped")[i]))
    flow = float(np.nan_to_num(sn.field("flow_limit_count")[i]))
    if backlog + flow > 0:
        lim = rates.after.sysctl.get("net.core.netdev_max_backlog")
        out.append(Drop("backlog", backlog + flow, f"backlog drops on CPU{cpu}: dropped {format_rate(backlog)}/s, flow_limit_count "
                        f"{format_rate(flow)}/s" + (f" (netdev_max_backlog={lim})" if lim is not None else "")))
    squeeze = float(np.nan_to_num(sn.field("time_squeeze")[i]))
    if squeeze > 0:
        ctl = rates.after.sysctl
        knobs = ", ".join(f"{k.rsplit('.', 1)[1]}={ctl[k]}" for k in ("net.core.netdev_budget", "net.core.netdev_budget_usecs") if k in ctl)
        out.append(Drop("budget", squeeze, f"budget: net_rx_action ran out {format_rate(squeeze)} times/s on CPU{cpu} (time_squeeze)"
                        + (f" ({knobs})" if knobs else "")))
    return out


def irq_time_in_tasks(rates: Rates) -> bool:
    """True when this kernel charges interrupt time to the task it interrupted.

    With IRQ time accounting (CONFIG_IRQ_TIME_ACCOUNTING, on) the rq clock skips interrupt time
    (update_rq_clock_task(), kernel/sched/core.c) and /proc/stat's irq column counts it exactly,
    so it grows with every timer interrupt. Without it the irq column stays 0 and the time a
    softirq ran on top of a task is that task's run time in schedstat (measured on this VM: a
    CPU hog under an RPS flood "ran" 99 % while /proc/stat gave 73 % of its CPU to softirq).
    """
    kernel = rates.after.kernel
    if kernel is not None and kernel.irq_time_accounting is not None:  # sources/kernel.py: pressure/irq, the stat column since boot
        return not kernel.irq_time_accounting
    if rates.cpu is None or "irq" not in rates.cpu.fields:
        return False
    irq = rates.cpu.field("irq")
    return bool(np.all(np.nan_to_num(irq) == 0))


def _with_interrupt_time(th: ThreadShare, irq_pct: float, t: Thresholds, irq_in_run: bool = False) -> ThreadShare:
    """A task runnable through all the time interrupts left its CPU also lost the interrupts' time.

    Interrupt time is neither a task's run time nor its run delay when the kernel accounts IRQ
    time: a task that ran or waited (nearly) all of the rest wanted the CPU throughout, so
    what interrupts took was taken from it; a task that also slept cannot be told apart, and
    only its wait counts. Without IRQ time accounting (irq_in_run) the interrupts that ran on
    top of a task are inside its run time: it lost the CPU's interrupt share of the time it was
    current, and ran that much less than schedstat says.
    """
    wanted = th.run_pct + th.wait_pct
    # irqlab itself, sampling (the corpus runs it at SCHED_FIFO 1, tests/fixtures/doctor/capture.sh),
    # is the measurement, not a victim.
    if th.thread.kthread or th.thread.comm == "irqlab" or irq_pct <= 0:
        return th
    if irq_in_run:
        # Interrupts fall on whichever task is current: on this one for its share of the CPU's
        # run time, so that much of what schedstat calls its run time was the interrupts'.
        taken = min(th.run_pct, irq_pct * th.run_pct / 100.0)
        return replace(th, irq_pct=taken, run_pct=th.run_pct - taken) if taken >= t.busy_task_slack_pct else th
    if wanted < 100.0 - irq_pct - t.busy_task_slack_pct:
        return th
    taken = min(irq_pct, 100.0 - wanted)
    # Less than the slack is within what two reads a moment apart can disagree by.
    return replace(th, irq_pct=taken) if taken >= t.busy_task_slack_pct else th


def harm_on(cpu: int, rates: Rates, threads: tuple[ThreadShare, ...], threads_known: bool, net_drops: list[Drop], t: Thresholds,
            irq_pct: float = 0.0) -> Harm:
    """The harm on one CPU: its tasks that waited or lost its irq_pct to interrupts, ksoftirqd, softnet drops, the network drops given."""
    in_run = irq_time_in_tasks(rates)
    mine = (_with_interrupt_time(th, irq_pct, t, in_run) for th in threads if th.cpu == cpu)
    waited = tuple(sorted((th for th in mine if th.lost_pct >= t.wait_warn_pct), key=lambda th: -th.lost_pct))
    ks = rates.ksoftirqd_pct().get(cpu)
    return Harm(cpu, ks, waited, tuple(_softnet_drops(rates, cpu) + net_drops), threads_known)


def harm_score(taken_pct: float, harm: Harm) -> float:
    """One number to rank causes by: CPU taken from tasks that waited, their wait, packets lost (log), squeezes (log).

    taken_pct counts only when a task waited (CPU nobody wanted was taken from no one); the log
    keeps a million drops from hiding a task that lost most of its CPU (docs/doctor.md).
    """
    squeeze = sum(d.rate_per_s for d in harm.drops if d.layer == "budget")
    taken = taken_pct if harm.waited else 0.0
    return round(taken + harm.max_wait_pct + 10 * math.log10(1 + harm.lost_per_s) + 10 * math.log10(1 + squeeze), 1)


# --- the model --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuCause:
    """One CPU's interrupt path: its time by vector, the main vector's sources, and its harm."""

    cpu: int
    times: tuple[VectorTime, ...]
    sources: tuple[Source, ...]  # of times[0]
    harm: Harm
    stat_pct: float | None = None  # softirq + irq share /proc/stat gave over the whole sample
    queue_irq_pct: float = 0.0  # hard-IRQ time of the NIC queues that feed a NET_RX main vector

    @property
    def path_pct(self) -> float:
        """The main vector's share, with its NIC queues' hard-IRQ time when they feed it."""
        return self.main.pct + self.queue_irq_pct

    @property
    def busy_pct(self) -> float:
        """The share judged against the limit: the larger of the trace's measure and /proc/stat's.

        The trace measures each handler run but covers only its window (1 s of the sample);
        /proc/stat covers the sample but, without CONFIG_IRQ_TIME_ACCOUNTING, samples the
        tick (account_system_time(), kernel/sched/cputime.c). On this project's VM they agree
        within a few points when NET_RX runs in the sender's task context, and differ up to 3x
        on a CPU whose NET_RX runs at irq exit after RPS IPIs; docs/doctor.md shows both cases.
        """
        return max(self.irq_pct, self.stat_pct or 0.0)

    @property
    def irq_pct(self) -> float:
        return sum(v.pct for v in self.times)

    @property
    def main(self) -> VectorTime:
        return self.times[0]

    @property
    def measured(self) -> bool:
        return all(v.measured for v in self.times)


@dataclass(frozen=True, slots=True)
class CausalModel:
    """Every CPU's interrupt path, the network's drops by namespace, and the tasks' shares."""

    cpus: tuple[CpuCause, ...]
    net: NetRates | None
    threads: tuple[ThreadShare, ...]
    threads_known: bool
    online: tuple[int, ...]
    drops_by_ns: Mapping[int, list[Drop]] = field(default_factory=dict)  # network_drops(): socket and NIC drops, each once

    def cpu(self, cpu: int) -> CpuCause | None:
        return next((c for c in self.cpus if c.cpu == cpu), None)


def _namespaces_of(sources: list[Source]) -> set[int]:
    return {s.namespace.inode for s in sources if s.namespace is not None}


def network_drops(net: NetRates | None, rates: Rates) -> dict[int, list[Drop]]:
    """Socket and NIC drops by namespace inode, each packet once.

    The CPUs' softnet dropped are counted again in the receiving devices' rx_dropped
    (nic_drops()): they are taken off the devices' rx_dropped, largest first (a backlog drop
    does not say which device it was for; the total is right either way).
    """
    sn = rates.softnet
    backlog = float(np.nansum(sn.field("dropped"))) if sn is not None else 0.0
    out: dict[int, list[Drop]] = {}
    devices = sorted(((ns, d) for ns in (net.namespaces if net else ()) for d in ns.devices), key=lambda x: -x[1].of("rx_dropped"))
    nic: dict[int, list[Drop]] = {}
    for ns, d in devices:
        counted = min(backlog, d.of("rx_dropped"))
        backlog -= counted
        x = nic_drops(d, ns.namespace, counted)
        if x is not None:
            nic.setdefault(ns.namespace.inode, []).append(x)
    for ns in net.namespaces if net else ():
        order = {d.device.name: i for i, d in enumerate(ns.devices)}
        drops = socket_drops(ns) + sorted(nic.get(ns.namespace.inode, []), key=lambda x: order.get(_device_of(x), 0))
        if drops:
            out[ns.namespace.inode] = drops
    return out


def _device_of(d: Drop) -> str:
    return d.text.removeprefix("NIC drops on ").split(" (", 1)[0]


def _online(rates: Rates) -> tuple[int, ...]:
    host = rates.after.host
    if host.online_cpus:
        return host.online_cpus
    for part in (rates.interrupts, rates.softirqs, rates.cpu):
        if part is not None:
            return part.cpus
    return ()


def receive_queues(rates: Rates, net: NetRates | None, cpu: int) -> list[Source]:
    """The NIC queues whose interrupts fired on cpu or land there: the receive path that starts on it."""
    ctx = _cpu_context(rates, cpu, _host(net))
    rows = [irq for irq in ctx.queues if ctx.irq_rate.get(irq, 0.0) > 0 or _lands_on(rates, irq, cpu)]
    return [s for irq in rows if (s := _nic_source(rates, ctx, cpu, _host(net), irq, ctx.irq_rate.get(irq, 0.0))) is not None]


def _queue_irq_share(rates: Rates, net: NetRates | None, cpu: int) -> float:
    """The share of cpu's interrupts that were its NIC queues' (0..1)."""
    ctx = _cpu_context(rates, cpu, _host(net))
    total = sum(ctx.irq_rate.values())
    return sum(r for irq, r in ctx.irq_rate.items() if irq in ctx.queues) / total if total > 0 else 0.0


def _receive_first(vts: list[VectorTime], queue_share: float) -> list[VectorTime]:
    """NET_RX leads a CPU whose hard-IRQ time is mostly its NIC queues' interrupts: they are one receive path.

    With net times (a softirq's time without the hard IRQs nested in it), a NIC whose every
    packet batch interrupts (no NAPI, or coalescing off) shows more hard-IRQ time than NET_RX;
    the cause is still the queue's receive path, named by NET_RX and its queue.
    """
    if len(vts) < 2 or vts[0].vector != "hardirq" or queue_share < 0.5:
        return vts
    rx = next((v for v in vts if v.vector == "NET_RX"), None)
    return vts if rx is None else [rx] + [v for v in vts if v is not rx]


def _ksoftirqd_wait(threads: tuple[ThreadShare, ...], cpu: int) -> float:
    return next((th.wait_pct for th in threads if th.thread.kthread and th.thread.comm == f"ksoftirqd/{cpu}"), 0.0)


def causal_model(
    rates: Rates, net: NetRates | None, threads: tuple[ThreadShare, ...], trace: TraceResult | None, t: Thresholds, threads_known: bool = True
) -> CausalModel:
    """Link every CPU's interrupt time to its sources and its harm.

    A namespace's socket and NIC drops are harm of the receive paths that reach it (a host NIC
    reaches every namespace behind it): a CPU whose main vector is NET_RX, and one whose NIC
    queues' interrupts land there while its hard-IRQ time leads or its ksoftirqd is starved
    (NET_RX that cannot run has no time of its own, but its queues still overflow). When no
    NET_RX chain reaches any namespace, every NET_RX CPU shares them. Each drop also gets its
    own finding (analysis/cause_findings.py).
    """
    raw = vector_times(rates, threads, trace, t)
    shares = {cpu: _queue_irq_share(rates, net, cpu) for cpu in raw}
    times = {cpu: _receive_first(vts, shares[cpu]) for cpu, vts in raw.items()}
    drops_by_ns = network_drops(net, rates)
    host_inode = net.namespaces[0].namespace.inode if net and net.namespaces else None
    linked = {cpu: sources_of(vts[0], rates, net, threads) for cpu, vts in times.items() if vts and vts[0].vector == "NET_RX"}
    reached = set().union(*(_namespaces_of(s) for s in linked.values())) if linked else set()
    cpus = []
    for cpu, vts in times.items():
        if not vts:
            continue
        srcs = linked.get(cpu) or sources_of(vts[0], rates, net, threads)
        mine = _namespaces_of(srcs) if cpu in linked else set()
        if cpu not in linked and (vts[0].vector == "hardirq" or _ksoftirqd_wait(threads, cpu) >= t.starved_wait_pct):
            mine = _namespaces_of(receive_queues(rates, net, cpu))
        if host_inode in mine:  # a host NIC feeds every namespace behind it
            mine |= set(drops_by_ns)
        if cpu in linked and not reached:
            mine = set(drops_by_ns)
        net_drops = [d for ns in sorted(mine) for d in drops_by_ns.get(ns, [])]
        soft, hard = _stat_pct(rates, cpu, "softirq"), _stat_pct(rates, cpu, "irq")
        stat = (soft or 0.0) + (hard or 0.0) if soft is not None or hard is not None else None
        # A NAPI thread is a task: its time shows in the others' wait, not as interrupt time taken from them.
        busy = max(min(100.0, sum(v.pct for v in vts if not v.vector.startswith("NAPI thread "))), stat or 0.0)
        hard_rx = next((v.pct for v in vts if v.vector == "hardirq"), 0.0) * shares[cpu] if vts[0].vector == "NET_RX" else 0.0
        cpus.append(CpuCause(cpu, tuple(vts), tuple(srcs), harm_on(cpu, rates, threads, threads_known, net_drops, t, busy), stat, hard_rx))
    return CausalModel(tuple(cpus), net, threads, threads_known, _online(rates), drops_by_ns)
