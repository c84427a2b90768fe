"""Which IRQs belong to a device: the msi_irqs/ of its PCI function, found from /sys.

A device's interrupt lines are listed in its PCI function's msi_irqs/ directory
(drivers/pci/msi/irqdomain.c, "msi_irqs" sysfs group, v6.18); a virtio device
(/sys/class/net/eth0/device -> .../0000:00:03.0/virtio2) keeps them in its parent. So walk up
from the device until a msi_irqs/ appears. Virtual devices (veth, lo) have no device link and
no IRQs; a root on tmpfs, overlay or NFS has no local disk.

Below a capture or another foreign root, a device link that leads out of it is refused
(UnsafeSource) like every other read (sources/fs.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from irqlab.errors import MissingSource, UnsafeSource
from irqlab.sources.fs import Roots, list_dir, translate

_WALK_UP = 4  # virtio2 -> 0000:00:03.0 is one step; no bus nests deeper below its PCI function


def _follow(link: Path, sysfs: Path) -> Path | None:
    """Where a sysfs link leads (None when it does not exist), never out of the sysfs root."""
    if not link.exists():
        return None
    target = link.resolve()
    real_root = Path(os.path.realpath(sysfs))
    if target != real_root and real_root not in target.parents:
        raise UnsafeSource(str(link), "a symbolic link leading out of the sysfs root: not followed")
    return target


def _msi_irqs(start: Path, sysfs: Path) -> tuple[int, ...]:
    """IRQ numbers of the first msi_irqs/ at start or above it (within sysfs); () if none."""
    real_root = Path(os.path.realpath(sysfs))
    p = start
    for _ in range(_WALK_UP):
        try:
            names = list_dir(p / "msi_irqs")
        except MissingSource:  # not here (or not a directory): the parent may have it
            pass
        else:
            return tuple(sorted(int(n) for n in names if n.isascii() and n.isdigit()))
        if p.parent == p or p.parent == real_root or real_root not in p.parents:
            break
        p = p.parent
    return ()


def netdev_irqs(roots: Roots, dev: str) -> tuple[int, ...]:
    """IRQ numbers of a network device in this sysfs's namespace; () for virtual devices."""
    device = _follow(roots.sys("class", "net", dev, "device"), roots.sysfs)
    return () if device is None else _msi_irqs(device, roots.sysfs)


def block_irqs(roots: Roots, major: int, minor: int) -> tuple[int, ...]:
    """IRQ numbers of the disk holding block device major:minor (a partition's whole disk)."""
    block = _follow(roots.sys("dev", "block", f"{major}:{minor}"), roots.sysfs)
    if block is None:
        return ()  # no such block device under this root (tmpfs, overlay, NFS)
    if (block / "partition").exists():
        block = block.parent  # vda1 -> vda
    device = _follow(block / "device", roots.sysfs)
    return () if device is None else _msi_irqs(device, roots.sysfs)


def root_disk_irqs(roots: Roots, mount_point: str = "/") -> tuple[int, ...]:
    """IRQs of the disk that holds mount_point (its queue interrupts are never moved)."""
    try:
        st = os.stat(mount_point)
    except OSError as exc:
        err = translate(exc, mount_point)
        if isinstance(err, MissingSource):
            return ()
        raise err from None
    return block_irqs(roots, os.major(st.st_dev), os.minor(st.st_dev))
