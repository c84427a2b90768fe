"""NAPI polling knobs: a device's napi_defer_hard_irqs, gro_flush_timeout and threaded, or one NAPI's.

With napi_defer_hard_irqs = N and gro_flush_timeout = T ns, a NAPI poll that finds work
keeps the device's interrupt masked and re-polls from a timer for up to N empty polls
(net/core/dev.c napi_complete_done(), v6.18): the kernel's real "switch to polling mode".
Both are per-device sysfs attributes (net/core/net-sysfs.c, v6.18): napi_defer_hard_irqs
is refused above S32_MAX (ERANGE), gro_flush_timeout is an unsigned long of nanoseconds;
writing needs CAP_NET_ADMIN in the device's namespace. The device may live in another
network namespace; see netns.py. `threaded` (net-sysfs.c threaded_store(), v6.18) moves every
NAPI poll of the device from NET_RX softirq into its own napi/DEV-ID kthread (0 off, 1 on,
2 threaded busy poll from 6.18).

From Linux 6.13 each NAPI instance has its own defer-hard-irqs, gro-flush-timeout and
irq-suspend-timeout (threaded from 6.17), set with `napi-set` of the netdev netlink family
(sources/napi.py declares it); a sysfs write sets the device and all of its instances alike.
A per-NAPI knob is named `napi:DEV:ID:ATTR`; before each read or write the instance is looked up
by the device's ifindex, so an id that now belongs to another device (the driver re-created
its NAPIs) is refused as gone, never written.
"""

from __future__ import annotations

import errno
import os
import socket

from irqlab.errors import IrqlabError, SourceError
from irqlab.mitigate.devfiles import check_device, read_attr, write_attr
from irqlab.mitigate.netns import run_in_netns
from irqlab.model.knob import bounded_int

NAPI_ATTRS: dict[str, tuple[int, int]] = {
    # attribute -> (min, max) accepted by irqlab
    "napi_defer_hard_irqs": (0, 2**31 - 1),  # S32_MAX, net-sysfs.c napi_defer_hard_irqs_store()
    "gro_flush_timeout": (0, 10**9),  # ns; above 1 s is a typo, not a tuning
    "threaded": (0, 2),  # net-sysfs.c modify_napi_threaded(): 0, 1, 2 (busy poll, 6.18)
}
# Per-NAPI attributes (napi-set; sources/napi.py SET_ATTRS) -> (min, max) accepted by irqlab.
NAPI_CONFIG_ATTRS: dict[str, tuple[int, int]] = {
    "defer-hard-irqs": (0, 2**31 - 1),  # netdev.yaml: max s32-max
    "gro-flush-timeout": (0, 10**9),
    "irq-suspend-timeout": (0, 10**9),
    "threaded": (0, 2),  # enum napi-threaded
}


def validate_napi(dev: str, attr: str, value: str) -> str:
    check_device(dev)
    if attr not in NAPI_ATTRS:
        raise IrqlabError(f"{attr}: not a NAPI knob irqlab writes ({', '.join(NAPI_ATTRS)})")
    lo, hi = NAPI_ATTRS[attr]
    return bounded_int(value, lo, hi, f"{dev}/{attr}")


def read_napi(netns: str | None, dev: str, attr: str, sysfs: str = "/sys") -> str:
    """A knob's value; sysfs (a test root) applies to irqlab's own namespace only."""
    return read_attr(netns, dev, attr, sysfs)


def write_napi(netns: str | None, dev: str, attr: str, value: str, sysfs: str = "/sys") -> None:
    write_attr(netns, dev, attr, validate_napi(dev, attr, value), sysfs)


# --- one NAPI instance, over netlink ----------------------------------------------------------


def validate_napi_config(dev: str, napi_id: str, attr: str, value: str) -> str:
    check_device(dev)
    if attr not in NAPI_CONFIG_ATTRS:
        raise IrqlabError(f"{attr}: not a per-NAPI knob irqlab writes ({', '.join(NAPI_CONFIG_ATTRS)})")
    bounded_int(napi_id, 1, 2**32 - 1, f"{dev} napi id")
    lo, hi = NAPI_CONFIG_ATTRS[attr]
    return bounded_int(value, lo, hi, f"{dev} napi {napi_id} {attr}")


def _instance(dev: str, napi_id: int):  # -> NapiInstance
    from irqlab.sources.napi import read_napis

    try:
        ifindex = socket.if_nametoindex(dev)
    except OSError:
        raise OSError(errno.ENODEV, f"{dev}: no such network device") from None
    try:
        found = [n for n in read_napis(ifindex) if n.id == napi_id]
    except SourceError as exc:
        raise IrqlabError(f"{dev} napi {napi_id}: {exc}") from None
    if not found:
        raise OSError(errno.ENOENT, f"{dev} has no NAPI instance {napi_id} (any more)")
    return found[0]


def _field(attr: str) -> str:
    return {"gro-flush-timeout": "gro_flush_timeout_ns", "irq-suspend-timeout": "irq_suspend_timeout_ns"}.get(
        attr, attr.replace("-", "_"))


def _read_config(dev: str, napi_id: int, attr: str) -> str:
    value = getattr(_instance(dev, napi_id), _field(attr))
    if value is None:
        raise IrqlabError(f"{dev} napi {napi_id}: this kernel reports no {attr} per NAPI")
    return str(value)


def _write_config(dev: str, napi_id: int, attr: str, value: int) -> None:
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
    from pyroute2.netlink.exceptions import NetlinkError

    from irqlab.sources.napi import CMD_NAPI_SET, SET_ATTRS, napi_set_msg, open_family

    _instance(dev, napi_id)  # still this device's
    sock = open_family()
    try:
        msg = napi_set_msg()
        msg["cmd"] = CMD_NAPI_SET
        msg["version"] = 1
        msg["attrs"] = [("NETDEV_A_NAPI_ID", napi_id), (f"NETDEV_A_NAPI_{SET_ATTRS[attr]}", value)]
        sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_ACK)
    except NetlinkError as exc:
        raise OSError(exc.code, f"napi-set {dev} napi {napi_id} {attr}={value}: {os.strerror(exc.code)}") from None
    finally:
        sock.close()


def read_napi_config(netns: str | None, dev: str, napi_id: str, attr: str) -> str:
    """One NAPI instance's attribute, asked of the netdev family inside the device's namespace."""
    validate_napi_config(dev, napi_id, attr, "0")
    return run_in_netns(netns, _read_config, dev, int(napi_id), attr)


def write_napi_config(netns: str | None, dev: str, napi_id: str, attr: str, value: str) -> None:
    """napi-set of one attribute of one NAPI instance of dev (CAP_NET_ADMIN in its namespace)."""
    value = validate_napi_config(dev, napi_id, attr, value)
    run_in_netns(netns, _write_config, dev, int(napi_id), attr, int(value))
