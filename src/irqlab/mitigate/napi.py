"""NAPI polling knobs of a network device: napi_defer_hard_irqs and gro_flush_timeout.

With napi_defer_hard_irqs = N and gro_flush_timeout = T ns, a NAPI poll that finds work
keeps the device's interrupt masked and re-polls from a timer for up to N empty polls
(net/core/dev.c napi_complete_done(), v6.18): the kernel's real "switch to polling mode".
Both are per-device sysfs attributes (net/core/net-sysfs.c, v6.18): napi_defer_hard_irqs
is refused above S32_MAX (ERANGE), gro_flush_timeout is an unsigned long of nanoseconds;
writing needs CAP_NET_ADMIN in the device's namespace. The device may live in another
network namespace; see netns.py.
"""

from __future__ import annotations

import os

from irqlab.errors import IrqlabError
from irqlab.mitigate.devfiles import check_device, read_attr, write_attr
from irqlab.mitigate.netns import run_in_netns
from irqlab.model.knob import bounded_int

NAPI_ATTRS: dict[str, tuple[int, int]] = {
    # attribute -> (min, max) accepted by irqlab
    "napi_defer_hard_irqs": (0, 2**31 - 1),  # S32_MAX, net-sysfs.c napi_defer_hard_irqs_store()
    "gro_flush_timeout": (0, 10**9),  # ns; above 1 s is a typo, not a tuning
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


def _devices() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


def list_devices(netns: str | None) -> list[str]:
    """Network devices of a namespace (None: ours)."""
    return run_in_netns(netns, _devices)
