"""What mitigation must know before it plans: device IRQs, the root disk's IRQs, devices by netns.

A device's interrupt lines are listed in its PCI function's msi_irqs/ directory
(drivers/pci/msi/irqdomain.c, "msi_irqs" sysfs group, v6.18); a virtio device
(/sys/class/net/eth0/device -> .../0000:00:03.0/virtio2) keeps them in its parent. So walk up
from the device until a msi_irqs/ appears. Virtual devices (veth, lo) have no device link and
no IRQs.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from irqlab.errors import IrqlabError
from irqlab.mitigate.netns import list_netns, run_in_netns
from irqlab.sources.fs import Roots


def _msi_irqs(start: Path, sysfs: Path) -> tuple[int, ...]:
    p = start
    for _ in range(4):
        d = p / "msi_irqs"
        if d.is_dir():
            return tuple(sorted(int(n) for n in os.listdir(d) if n.isdigit()))
        if p.parent == p or not str(p).startswith(str(sysfs)):
            break
        p = p.parent
    return ()


def netdev_irqs(roots: Roots, dev: str) -> tuple[int, ...]:
    """IRQ numbers of a network device in irqlab's own namespace; () for virtual devices."""
    link = roots.sys("class", "net", dev, "device")
    if not link.exists():
        return ()
    return _msi_irqs(link.resolve(), roots.sysfs)


def root_disk_irqs(roots: Roots, mount_point: str = "/") -> tuple[int, ...]:
    """IRQs of the disk that holds `/`: its queue interrupts are never moved."""
    try:
        st = os.stat(mount_point)
    except OSError:
        return ()
    link = roots.sys("dev", "block", f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if not link.exists():
        return ()  # tmpfs, overlay, NFS root: no local disk
    block = link.resolve()
    if (block / "partition").exists():
        block = block.parent  # vda1 -> vda
    device = block / "device"
    return _msi_irqs(device.resolve(), roots.sysfs) if device.exists() else ()


def _describe(name_pattern: str) -> list[dict]:
    """Inside one namespace: matching devices, their NAPI knobs, whether they coalesce."""
    import errno

    from irqlab.mitigate.coalesce import _get
    from irqlab.mitigate.napi import NAPI_ATTRS

    out = []
    for dev in sorted(os.listdir("/sys/class/net")):
        if not fnmatch.fnmatchcase(dev, name_pattern):
            continue
        napi = {}
        for attr in NAPI_ATTRS:
            try:
                with open(f"/sys/class/net/{dev}/{attr}") as f:
                    napi[attr] = f.read().strip()
            except OSError:
                pass
        try:
            _get(dev, "rx_coalesce_usecs")
            coalesce = True
        except OSError as exc:
            coalesce = False if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL) else None
        except Exception:  # noqa: BLE001 - a probe: unknown is an answer
            coalesce = None
        out.append({"name": dev, "napi": napi, "coalesce": coalesce})
    return out


def describe_devices(name_pattern: str, netns_pattern: str) -> tuple[list[tuple[str | None, dict]], list[str]]:
    """(netns, facts) of matching devices, and the namespaces that could not be read.

    netns_pattern "" is irqlab's own namespace, else fnmatch over `ip netns` names; one child
    process per foreign namespace.
    """
    namespaces: list[str | None] = [None] if not netns_pattern else [n for n in list_netns() if fnmatch.fnmatchcase(n, netns_pattern)]
    out, errors = [], []
    for ns in namespaces:
        try:
            facts = run_in_netns(ns, _describe, name_pattern)
        except (OSError, IrqlabError) as exc:
            errors.append(f"network namespace {ns or '(own)'}: {exc}")  # e.g. deleted since listing
            continue
        out += [(ns, f) for f in facts]
    return out, errors
