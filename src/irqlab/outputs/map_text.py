"""`irqlab map`: the interrupt map as text, grouped by device; CPU lists as ranges."""

from __future__ import annotations

from collections.abc import Iterable

from irqlab.analysis.irqmap import IrqMap, IrqRow, NapiRow, NetDeviceMap
from irqlab.cpulist import format_cpulist

_HEAD = ("IRQ", "queue", "actions", "affinity", "effective", "nodes", "movable")


def _cpus(cpus: tuple[int, ...] | None) -> str:
    if cpus is None:
        return "-"
    return format_cpulist(cpus) or "(none)"


def _nodes(nodes: tuple[int, ...]) -> str:
    return ",".join(map(str, nodes)) or "-"


def _movable(r: IrqRow) -> str:
    return {True: "yes", False: "no", None: "?"}[r.movable]


def _cells(r: IrqRow) -> tuple[str, ...]:
    queue = f"{r.role}-{r.queue}" if r.role else "-"
    return (r.irq, queue, ",".join(r.actions) or "-", _cpus(r.affinity), _cpus(r.effective_affinity),
            _nodes(r.effective_nodes or r.affinity_nodes), _movable(r))


def _napi_cell(r: IrqRow) -> str:
    if r.napi_id is None:
        return "-"
    return f"{r.napi_id}" + (f" {r.napi_thread}" if r.napi_thread else "")


def _table(rows: list[IrqRow]) -> list[str]:
    # The NAPI column only where the kernel named an instance for one of these IRQs (6.9+).
    napi = any(r.napi_id is not None for r in rows)
    head = _HEAD + ("napi",) if napi else _HEAD
    cells = [head] + [_cells(r) + ((_napi_cell(r),) if napi else ()) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    out = ["  " + "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    whys: dict[str, list[str]] = {}
    for r in rows:
        if r.why:
            whys.setdefault(r.why, []).append(r.irq)
    out += [f"    not movable ({', '.join(irqs)}): {why}" if not why.startswith("unknown") else f"    movable? ({', '.join(irqs)}): {why}"
            for why, irqs in whys.items()]
    return out


def _node(n: int | None) -> str:
    return "-" if n is None or n < 0 else str(n)


def _queues(n: NetDeviceMap) -> list[str]:
    d = n.device
    threaded = {None: "-", 0: "off", 1: "on", 2: "busy-poll"}.get(d.threaded, str(d.threaded))
    out = [f"  {n.namespace}/{d.name}: driver {d.driver or '-'}, node {_node(d.numa_node)}, threaded NAPI {threaded}"]
    for q in d.rx_queues:
        rps = "-" if q.rps_cpus is None else (format_cpulist(q.rps_cpus) or "off")
        out.append(f"    rx-{q.index}  rps_cpus {rps}  rps_flow_cnt {'-' if q.rps_flow_cnt is None else q.rps_flow_cnt}")
    for t in d.tx_queues:
        xps = "-" if t.xps_cpus is None else (format_cpulist(t.xps_cpus) or "off")
        out.append(f"    tx-{t.index}  xps_cpus {xps}")
    out += [_napi_line(r) for r in n.napis]
    return out


def _ns(value: int | None) -> str:
    return "-" if value is None else f"{value} ns"


def _napi_line(r: NapiRow) -> str:
    """One NAPI instance: its IRQ, its thread (CPU, policy, priority) and its own settings."""
    n = r.napi
    if r.thread is not None:
        th = r.thread
        prio = f" {th.rt_priority}" if th.rt_priority else ""
        thread = f"{th.comm} (pid {th.pid}, CPU {'-' if th.last_cpu is None else th.last_cpu}, {th.policy}{prio})"
    else:
        thread = f"pid {n.pid}" if n.pid else "softirq"
    threaded = {None: "", 0: "", 1: " threaded", 2: " threaded busy-poll"}.get(n.threaded, f" threaded {n.threaded}")
    return (f"    napi {n.id}  irq {'-' if n.irq is None else n.irq}  {thread}{threaded}  "
            f"defer_hard_irqs {'-' if n.defer_hard_irqs is None else n.defer_hard_irqs}  "
            f"gro_flush_timeout {_ns(n.gro_flush_timeout_ns)}  irq_suspend_timeout {_ns(n.irq_suspend_timeout_ns)}")


def render_map_text(m: IrqMap, notes: Iterable[str] = ()) -> str:
    online = "-" if m.online is None else format_cpulist(m.online)
    nodes = "; ".join(f"node{k}: {format_cpulist(v) or '(no CPUs)'}" for k, v in m.nodes.items()) or "no NUMA"
    lines = [f"online CPUs {online}; {nodes}"]
    by_dev: dict[str | None, list[IrqRow]] = {}
    for r in m.rows:
        if r.numbered:
            by_dev.setdefault(r.device, []).append(r)
    for dev in sorted(d for d in by_dev if d is not None):
        rows = by_dev[dev]
        first = rows[0]
        netdevs = sorted({r.netdev for r in rows if r.netdev})
        extra = f", netdev {','.join(netdevs)}" if netdevs else ""
        lines += ["", f"device {dev}: driver {first.driver or '-'}, node {_node(first.device_node)}{extra}"]
        lines += _table(rows)
        lines += [q for n in m.netdevs if n.pci == dev for q in _queues(n)]
    if None in by_dev:
        lines += ["", "IRQs of no PCI device"] + _table(by_dev[None])
    arch = [r.irq for r in m.rows if not r.numbered]
    if arch:
        lines += ["", f"per-CPU architecture rows, not movable: {' '.join(arch)}"]
    others = [n for n in m.netdevs if n.pci is None]
    if others:
        lines += ["", "network devices without a PCI function (RPS/XPS, threaded NAPI)"]
        lines += [q for n in others for q in _queues(n)]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines) + "\n"
