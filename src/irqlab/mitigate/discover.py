"""What mitigation must know before it plans: device IRQs, the root disk's IRQs, devices by netns.

Every fact comes from a reader in sources/ (devirqs.py: a device's and the root disk's
msi_irqs; netdev.py: devices and their NAPI knobs); this module only gathers them per network
namespace, entering a foreign one with netns.py's run_in_netns(). The coalescing probe is
ethtool's (coalesce.py), not a file.
"""

from __future__ import annotations

import fnmatch

from irqlab.errors import IrqlabError, SourceError
from irqlab.mitigate.netns import list_netns, run_in_netns
from irqlab.sources.devirqs import netdev_irqs, root_disk_irqs
from irqlab.sources.fs import Roots
from irqlab.sources.netdev import list_netdevs, read_netdev_ints

__all__ = ["describe_devices", "netdev_irqs", "root_disk_irqs"]


def _describe(name_pattern: str, procfs: str, sysfs: str) -> list[dict]:
    """Inside one namespace: matching devices, their NAPI knobs, whether they coalesce.

    A NAPI knob that is present but unreadable is left out of "napi" and named in "unreadable".
    """
    import errno

    from irqlab.mitigate.coalesce import _get
    from irqlab.mitigate.napi import NAPI_ATTRS

    roots = Roots.of(procfs, sysfs)
    napis = _napis(roots)
    out = []
    for dev in list_netdevs(roots):
        if not fnmatch.fnmatchcase(dev, name_pattern):
            continue
        values, unreadable = read_netdev_ints(roots, dev, NAPI_ATTRS)
        try:
            _get(dev, "rx_coalesce_usecs")
            coalesce = True
        except OSError as exc:
            coalesce = False if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL) else None
        except Exception:  # noqa: BLE001 - a probe: unknown is an answer
            coalesce = None
        ifindex = read_netdev_ints(roots, dev, ("ifindex",))[0].get("ifindex")
        out.append({"name": dev, "napi": {k: str(v) for k, v in values.items()}, "coalesce": coalesce,
                    "unreadable": [u.message for u in unreadable],
                    "napis": [[n.id, _config(n)] for n in napis if n.ifindex == ifindex and _config(n)]})
    return out


def _napis(roots: Roots) -> tuple:
    """This namespace's NAPI instances (netdev netlink); () under a test root or without the family."""
    if not roots.is_live:
        return ()
    from irqlab.sources.napi import read_napis

    try:
        return read_napis()
    except SourceError:
        return ()


def _config(n) -> dict[str, str]:  # n: NapiInstance
    """An instance's own settings, as the plan compares them (those this kernel reports)."""
    values = {"defer-hard-irqs": n.defer_hard_irqs, "gro-flush-timeout": n.gro_flush_timeout_ns,
              "irq-suspend-timeout": n.irq_suspend_timeout_ns, "threaded": n.threaded}
    return {k: str(v) for k, v in values.items() if v is not None}


def describe_devices(name_pattern: str, netns_pattern: str,
                     roots: Roots | None = None) -> tuple[list[tuple[str | None, dict]], list[str]]:
    """(netns, facts) of matching devices, and one line per namespace or file that could not be read.

    netns_pattern "" is irqlab's own namespace (its devices under roots, the live /sys by
    default), else fnmatch over `ip netns` names; one child process per foreign namespace,
    which reads its own private sysfs.
    """
    roots = roots or Roots()
    namespaces: list[str | None] = [None] if not netns_pattern else [n for n in list_netns() if fnmatch.fnmatchcase(n, netns_pattern)]
    out, errors = [], []
    for ns in namespaces:
        own = ns is None
        procfs, sysfs = (str(roots.procfs), str(roots.sysfs)) if own else ("/proc", "/sys")
        try:
            facts = run_in_netns(ns, _describe, name_pattern, procfs, sysfs)
        except (OSError, IrqlabError) as exc:
            errors.append(f"network namespace {ns or '(own)'}: {exc}")  # e.g. deleted since listing
            continue
        for f in facts:
            errors += [f"network namespace {ns or '(own)'}: {line}" for line in f.pop("unreadable")]
        out += [(ns, f) for f in facts]
    return out, errors
