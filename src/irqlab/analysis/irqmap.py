"""The interrupt map: each IRQ with its device, queue, CPUs, NUMA nodes, and whether it can move.

Pure: built from what sources/ read (IrqInfo, /proc/interrupts lines, PCI functions, netdev
links, each namespace's devices, NUMA nodes, online CPUs). `preflight()` predicts the
kernel's answer to an affinity write before anyone makes it.

Kernel sources (v6.18): register_irq_proc() (kernel/irq/proc.c) makes smp_affinity{,_list}
read-only when irq_can_set_affinity_usr() is false, and write_irq_affinity() then returns
-EPERM (-EIO before commit eb29369fa543e); irq_can_set_affinity_usr() is false for managed
IRQs (IRQD_AFFINITY_MANAGED, kernel/irq/affinity.c spread a driver's queues), per-CPU and
no-balancing IRQs, and chips without irq_set_affinity. A write whose CPUs are all offline
is not applied as given: write_irq_affinity() falls back to irq_select_affinity_usr().
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from irqlab.model.devices import NetDeviceLink, PciFunction
from irqlab.model.net import NapiInstance, NetDevice
from irqlab.model.snapshot import IrqInfo, IrqLine, TaskInfo

WHY_ARCH = "per-CPU: an architecture vector, not a numbered IRQ (no /proc/irq/N)"
WHY_NO_AFFINITY = "no /proc/irq/N/smp_affinity: the kernel gives this IRQ no SMP affinity"
WHY_MANAGED = "managed: the kernel spread this device's queues itself; smp_affinity_list is read-only (EPERM)"
WHY_READ_ONLY = "the kernel owns its affinity (per-CPU, no balancing, or a chip that cannot move it): smp_affinity_list is read-only (EPERM)"
WHY_UNKNOWN = "unknown: a capture does not record whether smp_affinity_list is writable"

# Queue words in action names: "virtio2-input.0", "eth0-TxRx-3", "ice-eth0-TxRx-0",
# "mlx5_comp3@pci:0000:03:00.0", "enp1s0f0-rx-2", "bnxt_en fp-1".
_ROLE = re.compile(r"(?:^|[-_.@ ])(txrx|combined|comp|fp|input|output|rx|tx)[-_.]?([0-9]+)(?![0-9])", re.I)
_ROLE_OF = {"txrx": "combined", "combined": "combined", "comp": "combined", "fp": "combined",
            "input": "rx", "output": "tx", "rx": "rx", "tx": "tx"}


@dataclass(frozen=True, slots=True)
class IrqRow:
    """One line of the map."""

    irq: str  # "36", or an architecture row's label ("LOC")
    actions: tuple[str, ...]
    device: str | None  # PCI address
    driver: str | None
    netdev: str | None  # host-namespace network device this IRQ serves
    role: str | None  # "rx", "tx", "combined"
    queue: int | None
    device_node: int | None  # -1: none given
    affinity: tuple[int, ...] | None
    effective_affinity: tuple[int, ...] | None
    affinity_nodes: tuple[int, ...]
    effective_nodes: tuple[int, ...]
    movable: bool | None  # None: cannot tell (a capture)
    why: str | None  # why not movable (or why unknown)
    managed: bool | None = None
    napi_id: int | None = None  # the NAPI instance the kernel ties to this IRQ (netdev netlink, 6.9+)
    napi_thread: str | None = None  # its napi/DEV-ID kthread's comm, while it polls threaded

    @property
    def numbered(self) -> bool:
        return self.irq.isdigit()


@dataclass(frozen=True, slots=True)
class NapiRow:
    """One NAPI instance of a device and, when it polls threaded, its kthread."""

    napi: NapiInstance
    thread: TaskInfo | None  # napi/DEV-ID: its CPU, policy and priority


@dataclass(frozen=True, slots=True)
class NetDeviceMap:
    """One network device: its queues' RPS/XPS and threaded NAPI, its NAPI instances, and its IRQs."""

    namespace: str  # "host" or the namespace's label
    device: NetDevice
    pci: str | None
    irqs: tuple[str, ...]
    napis: tuple[NapiRow, ...] = ()


@dataclass(frozen=True, slots=True)
class IrqMap:
    rows: tuple[IrqRow, ...]
    netdevs: tuple[NetDeviceMap, ...]
    nodes: Mapping[int, tuple[int, ...]]  # NUMA node -> CPUs ({}: no NUMA)
    online: tuple[int, ...] | None


def parse_role(action: str, prefix: str | None = None) -> tuple[str, int] | None:
    """("rx", 0) for "virtio2-input.0"; the prefix (the device's own name) is skipped first."""
    text = action[len(prefix):] if prefix and action.startswith(prefix) else action
    m = _ROLE.search(text)
    return (_ROLE_OF[m.group(1).lower()], int(m.group(2))) if m else None


def _nodes_of(cpus: Iterable[int] | None, cpu_node: Mapping[int, int]) -> tuple[int, ...]:
    return tuple(sorted({cpu_node[c] for c in cpus or () if c in cpu_node}))


def movable_of(info: IrqInfo | None, msi: bool) -> tuple[bool | None, str | None]:
    """Whether a numbered IRQ's affinity can be written, and why not."""
    if info is None or info.affinity is None:
        return False, WHY_NO_AFFINITY
    if info.managed is None:
        return None, WHY_UNKNOWN
    if info.managed:
        # A read-only MSI vector of a device is a managed queue (per-CPU and chained
        # interrupts are not MSI); any other read-only IRQ is named by what it may be.
        return False, WHY_MANAGED if msi else WHY_READ_ONLY
    return True, None


def _netdev_of(actions: tuple[str, ...], fn: PciFunction, links: list[NetDeviceLink]) -> NetDeviceLink | None:
    """The netdev an IRQ of fn serves: the one named in its action, or the function's only one."""
    for link in links:
        for prefix in (link.child, link.name):
            if prefix and any(a.startswith(prefix + "-") or f"-{link.name}-" in a for a in actions):
                return link
    return links[0] if len(links) == 1 and not fn.children[1:] else None


def build_map(
    infos: Mapping[int, IrqInfo],
    lines: Iterable[IrqLine],
    functions: Iterable[PciFunction],
    links: Iterable[NetDeviceLink],
    netviews: Iterable[tuple[str, Iterable[NetDevice]]],
    nodes: Mapping[int, tuple[int, ...]],
    online: tuple[int, ...] | None,
    napis: Mapping[tuple[str, str], tuple[NapiInstance, ...]] | None = None,
    tasks: Iterable[TaskInfo] = (),
) -> IrqMap:
    """The map: every numbered IRQ (from /proc/irq and /proc/interrupts) and every arch row.

    napis: each (namespace label, device name)'s NAPI instances, where the kernel reports them;
    tasks: the kernel threads, of which the napi/DEV-ID ones are named per instance.
    """
    cpu_node = {cpu: node for node, cpus in nodes.items() for cpu in cpus}
    fn_of = {irq: fn for fn in functions for irq in fn.irqs}
    links_of: dict[str, list[NetDeviceLink]] = {}
    for link in links:
        if link.pci:
            links_of.setdefault(link.pci, []).append(link)
    line_of = {line.irq: line for line in lines}
    numbered = sorted(set(infos) | {int(k) for k in line_of if k.isdigit()})
    rows = [_row(n, infos.get(n), line_of.get(str(n)), fn_of.get(n), links_of, cpu_node) for n in numbered]
    rows += [_arch_row(line) for line in line_of.values() if not line.irq.isdigit()]
    by_pid = {t.pid: t for t in tasks if t.kind == "napi"}
    napi_rows = {key: tuple(NapiRow(n, by_pid.get(n.pid) if n.pid else None) for n in found)
                 for key, found in (napis or {}).items()}
    rows = _with_napi(rows, napi_rows)
    netdevs = _netdevs(netviews, links_of, rows, napi_rows)
    return IrqMap(tuple(rows), netdevs, dict(nodes), online)


def _with_napi(rows: list[IrqRow], napi_rows: Mapping[tuple[str, str], tuple[NapiRow, ...]]) -> list[IrqRow]:
    """Each host IRQ with the NAPI instance the kernel ties to it (an IRQ number is host-wide)."""
    of_irq = {r.napi.irq: r for (label, _), found in napi_rows.items() if label == "host" for r in found if r.napi.irq}
    out = []
    for row in rows:
        hit = of_irq.get(int(row.irq)) if row.numbered else None
        if hit is not None:
            comm = hit.thread.comm if hit.thread else None
            row = replace(row, napi_id=hit.napi.id, napi_thread=comm)
        out.append(row)
    return out


def _row(n: int, info: IrqInfo | None, line: IrqLine | None, fn: PciFunction | None,
         links_of: Mapping[str, list[NetDeviceLink]], cpu_node: Mapping[int, int]) -> IrqRow:
    actions = (info.actions if info and info.actions is not None else None) or (line.actions if line else ())
    link = _netdev_of(actions, fn, links_of.get(fn.address, [])) if fn else None
    role = None
    if link is not None:
        role = next((r for r in (parse_role(a, link.child or link.name) for a in actions) if r), None)
    movable, why = movable_of(info, bool(fn and fn.msi))
    aff = info.affinity if info else None
    eff = info.effective_affinity if info else None
    return IrqRow(
        irq=str(n), actions=tuple(actions), device=fn.address if fn else None,
        driver=fn.driver if fn else None, netdev=link.name if link else None,
        role=role[0] if role else None, queue=role[1] if role else None,
        device_node=fn.numa_node if fn else None,
        affinity=aff, effective_affinity=eff,
        affinity_nodes=_nodes_of(aff, cpu_node), effective_nodes=_nodes_of(eff, cpu_node),
        movable=movable, why=why, managed=info.managed if info else None,
    )


def _arch_row(line: IrqLine) -> IrqRow:
    name = (line.description,) if line.description else ()
    return IrqRow(line.irq, name, None, None, None, None, None, None, None, None, (), (), False, WHY_ARCH)


def _netdevs(netviews: Iterable[tuple[str, Iterable[NetDevice]]], links_of: Mapping[str, list[NetDeviceLink]],
             rows: list[IrqRow], napi_rows: Mapping[tuple[str, str], tuple[NapiRow, ...]]) -> tuple[NetDeviceMap, ...]:
    pci_of = {link.name: pci for pci, ls in links_of.items() for link in ls}
    out = []
    for label, devices in netviews:
        for dev in devices:
            host = label == "host"
            irqs = tuple(r.irq for r in rows if host and r.netdev == dev.name)
            out.append(NetDeviceMap(label, dev, pci_of.get(dev.name) if host else None, irqs, napi_rows.get((label, dev.name), ())))
    return tuple(out)


def preflight(row: IrqRow, target: Iterable[int], online: Iterable[int] | None,
              possible: Iterable[int] | None = None) -> str | None:
    """The kernel's predicted refusal of writing target to row's smp_affinity_list; None: accepted."""
    cpus = tuple(sorted(set(target)))
    if not row.numbered:
        return WHY_ARCH
    if row.movable is False:
        return row.why
    if not cpus:
        return "an empty CPU list: the kernel refuses it (EINVAL)"
    if possible is not None and not set(cpus) <= set(possible):
        return f"CPUs {sorted(set(cpus) - set(possible))} do not exist (ERANGE)"
    if online is not None and not set(cpus) & set(online):
        return "no online CPU in the list: the kernel ignores it and picks its default affinity (or EINVAL)"
    return None
