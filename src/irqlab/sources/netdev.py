"""/sys/class/net/DEV: each network device's counters, RPS/XPS masks, NAPI knobs, node and driver.

net/core/net-sysfs.c (v6.18) makes every file read here; the ones that came later are read
as optional (None when absent):
  statistics/*                  every rtnl_link_stats64 counter, one "%lu" file each
  queues/rx-N/rps_cpus          Linux >= 2.6.35, CONFIG_RPS; a %*pb mask ("ff,ffffffff")
  queues/rx-N/rps_flow_cnt      Linux >= 2.6.35, CONFIG_RFS_ACCEL/RPS (RFS flow table size)
  queues/tx-N/xps_cpus          Linux >= 2.6.38, CONFIG_XPS; hidden on single-queue devices
  gro_flush_timeout             Linux >= 3.19 (commit 3b47d30396ba), nanoseconds
  napi_defer_hard_irqs          Linux >= 5.11 (commit 6f8b12d661d0)
  threaded                      Linux >= 5.12 (commit 5fdd2f0e5c64): 0 softirq NAPI, 1 kthreads,
                                2 kthreads busy polling (6.17); EOPNOTSUPP without NAPI on 5.12
  device/numa_node, device/driver   only for devices with a parent (not lo, veth, ifb)
  ifindex, iflink               the device's index, and the index of the one it sends through
                                (a veth end's peer, a VLAN's lower device; its own otherwise)

A device shown here belongs to the network namespace that mounted this sysfs (see
sources/netns.py to read another namespace's).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from irqlab.cpulist import parse_cpumask
from irqlab.errors import MissingSource, ParseError, SourceError, reason_of
from irqlab.model.net import NetDevice, RxQueue, TxQueue
from irqlab.model.unreadable import Unreadable
from irqlab.sources.fs import Roots, list_dir, read_text

T = TypeVar("T")
_INT = re.compile(r"-?[0-9]+\Z")
_QUEUE = re.compile(r"(rx|tx)-([0-9]+)\Z")





@dataclass(frozen=True, slots=True)
class NetDevices:
    devices: tuple[NetDevice, ...]
    unreadable: tuple[Unreadable, ...]  # files present but unreadable or malformed, one each


# --- pure parsers ---------------------------------------------------------------------------


def parse_int(text: str, path: str) -> int:
    """A one-number sysfs file ("0\\n", "-1\\n")."""
    token = text.strip()
    if _INT.match(token) is None:
        raise ParseError(path, 1, token, "not a decimal integer")
    return int(token)


def parse_mask(text: str, path: str) -> tuple[int, ...]:
    """rps_cpus / xps_cpus: a hex mask in 32-bit comma groups (cpulist.parse_cpumask)."""
    return parse_cpumask(text, path, 1)


def queue_index(name: str) -> tuple[str, int] | None:
    """("rx", 3) for "rx-3"; None for any other name."""
    m = _QUEUE.match(name)
    return (m.group(1), int(m.group(2))) if m else None


# --- reads -----------------------------------------------------------------------------------


class _Reader:
    """Reads optional files, keeping one Unreadable per failing file."""

    def __init__(self) -> None:
        self.unreadable: list[Unreadable] = []

    def optional(self, path: str, parser: Callable[[str, str], T]) -> T | None:
        try:
            return parser(read_text(path), path)
        except MissingSource:
            return None
        except SourceError as exc:
            self.unreadable.append(Unreadable("netdev", exc.path, reason_of(exc), str(exc)))
            return None

    def listing(self, path: str) -> list[str]:
        try:
            return list_dir(path)
        except MissingSource:
            return []
        except SourceError as exc:
            self.unreadable.append(Unreadable("netdev", exc.path, reason_of(exc), str(exc)))
            return []


def _statistics(base: str, r: _Reader) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in sorted(r.listing(f"{base}/statistics")):
        value = r.optional(f"{base}/statistics/{name}", parse_int)
        if value is not None:
            out[name] = value
    return out


def _queues(base: str, r: _Reader) -> tuple[tuple[RxQueue, ...], tuple[TxQueue, ...]]:
    found = sorted(q for q in map(queue_index, r.listing(f"{base}/queues")) if q is not None)
    rx = tuple(
        RxQueue(i, r.optional(f"{base}/queues/rx-{i}/rps_cpus", parse_mask), r.optional(f"{base}/queues/rx-{i}/rps_flow_cnt", parse_int))
        for kind, i in found
        if kind == "rx"
    )
    tx = tuple(TxQueue(i, r.optional(f"{base}/queues/tx-{i}/xps_cpus", parse_mask)) for kind, i in found if kind == "tx")
    return rx, tx


def _driver(base: str, r: _Reader) -> str | None:
    # list_dir refuses a device/ link that leads out of a capture before the link is read;
    # only the link's text is used (its last component is the driver's name).
    if "driver" not in r.listing(f"{base}/device"):
        return None
    try:
        return os.path.basename(os.readlink(f"{base}/device/driver"))
    except OSError:
        return None


def read_netdev(roots: Roots, name: str, r: _Reader | None = None) -> NetDevice:
    """One device of /sys/class/net under roots (MissingSource if there is no such device)."""
    r = r or _Reader()
    base = str(roots.sys("class", "net", name))
    list_dir(base)  # a vanished or mistyped device is an error, not a device of Nones
    rx, tx = _queues(base, r)
    return NetDevice(
        name=name,
        statistics=_statistics(base, r),
        rx_queues=rx,
        tx_queues=tx,
        threaded=r.optional(f"{base}/threaded", parse_int),
        napi_defer_hard_irqs=r.optional(f"{base}/napi_defer_hard_irqs", parse_int),
        gro_flush_timeout_ns=r.optional(f"{base}/gro_flush_timeout", parse_int),
        numa_node=r.optional(f"{base}/device/numa_node", parse_int),
        driver=_driver(base, r),
        ifindex=r.optional(f"{base}/ifindex", parse_int),
        iflink=r.optional(f"{base}/iflink", parse_int),
    )


def read_netdevs(roots: Roots) -> NetDevices:
    """Every device of /sys/class/net under roots, by name; devices that vanish mid-read are skipped."""
    r = _Reader()
    devices = []
    for name in sorted(list_dir(roots.sys("class", "net"))):
        try:
            devices.append(read_netdev(roots, name, r))
        except MissingSource:
            continue
    return NetDevices(tuple(devices), tuple(r.unreadable))


def list_netdevs(roots: Roots) -> list[str]:
    """Names of the devices in /sys/class/net under roots, sorted."""
    return sorted(list_dir(roots.sys("class", "net")))


def read_netdev_ints(roots: Roots, name: str, attrs: Iterable[str]) -> tuple[dict[str, int], tuple[Unreadable, ...]]:
    """Some one-number attributes of a device (napi_defer_hard_irqs, gro_flush_timeout, ...).

    The values of those present by name; an absent one (older kernel, EOPNOTSUPP) is left out,
    and one present but unreadable or malformed is left out and reported as an Unreadable.
    """
    r = _Reader()
    base = str(roots.sys("class", "net", name))
    out: dict[str, int] = {}
    for attr in attrs:
        value = r.optional(f"{base}/{attr}", parse_int)
        if value is not None:
            out[attr] = value
    return out, tuple(r.unreadable)
