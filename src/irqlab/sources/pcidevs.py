"""/sys/bus/pci/devices/*: each PCI function's IRQs, driver and NUMA node; netdevs' parents.

A function's MSI/MSI-X vectors are the entries of its msi_irqs/ directory
(drivers/pci/msi/irqdomain.c, v6.18); a function without MSI raises its legacy INTx line,
the number in its irq file (drivers/pci/pci-sysfs.c, irq_show). numa_node is -1 when the
firmware gave none. A virtio device (.../0000:00:03.0/virtio2) is a child of the function
and its action names start with that child's name ("virtio2-input.0").

Below a capture, links are only read as text (the driver's name is the link's last
component), never followed out of the root.
"""

from __future__ import annotations

import os
import re

from irqlab.errors import MissingSource, SourceError, UnsafeSource
from irqlab.model.devices import NetDeviceLink, PciFunction
from irqlab.sources.fs import Roots, list_dir, read_optional

_PCI_ADDR = re.compile(r"[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\Z")
_CHILD = re.compile(r"[a-z]+[0-9]+\Z")  # virtio2; not "driver", "msi_irqs", "power"


def _int(text: str | None) -> int | None:
    token = (text or "").strip()
    return int(token) if token.removeprefix("-").isascii() and token.removeprefix("-").isdigit() else None


def _link_name(path: str) -> str | None:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def read_pci_function(roots: Roots, address: str) -> PciFunction:
    """One PCI function (MissingSource when it is not there)."""
    base = roots.sys("bus", "pci", "devices", address)
    entries = set(list_dir(base))
    msi = "msi_irqs" in entries
    if msi:
        irqs = tuple(sorted(int(n) for n in list_dir(base / "msi_irqs") if n.isascii() and n.isdigit()))
    else:
        line = _int(read_optional(base / "irq"))
        irqs = (line,) if line else ()  # 0: no INTx line routed
    return PciFunction(
        address=address,
        irqs=irqs,
        msi=msi,
        driver=_link_name(str(base / "driver")) if "driver" in entries else None,
        numa_node=_int(read_optional(base / "numa_node")),
        children=tuple(sorted(e for e in entries if _CHILD.match(e) and e != address)),
    )


def read_pci_functions(roots: Roots) -> tuple[PciFunction, ...]:
    """Every PCI function of this sysfs; () on a machine (or capture) without a PCI bus."""
    try:
        names = list_dir(roots.sys("bus", "pci", "devices"))
    except MissingSource:
        return ()
    out = []
    for name in sorted(names):
        try:
            out.append(read_pci_function(roots, name))
        except MissingSource:
            continue  # hot-removed meanwhile
    return tuple(out)


def parse_device_path(target: str) -> tuple[str | None, str | None]:
    """(PCI address, child) of a resolved device path: ".../0000:00:03.0/virtio2" -> both."""
    parts = [p for p in target.split("/") if p]
    for i in range(len(parts) - 1, -1, -1):
        if _PCI_ADDR.match(parts[i]):
            child = parts[i + 1] if i + 1 < len(parts) else None
            return parts[i], child
    return None, None


def read_netdev_link(roots: Roots, name: str) -> NetDeviceLink:
    """Where /sys/class/net/NAME/device leads; a link out of the sysfs root is not followed."""
    path = roots.sys("class", "net", name, "device")
    if not os.path.islink(path):
        return NetDeviceLink(name, None, None)  # virtual: lo, veth, ifb
    # The link is relative to the netdev's real directory (itself reached through a link):
    # resolve it whole, then keep only what lies below this sysfs.
    target = os.path.realpath(path)
    root = os.path.realpath(roots.sysfs)
    if not target.startswith(root.rstrip("/") + "/"):
        raise UnsafeSource(str(path), "a symbolic link leading out of the sysfs root: not followed")
    pci, child = parse_device_path(target[len(root):])
    return NetDeviceLink(name, pci, child)


def read_netdev_links(roots: Roots) -> tuple[NetDeviceLink, ...]:
    """Every network device of this sysfs's namespace with its parent."""
    try:
        names = list_dir(roots.sys("class", "net"))
    except SourceError:
        return ()
    return tuple(read_netdev_link(roots, n) for n in sorted(names))
