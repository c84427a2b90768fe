"""The kernel knobs that shape softirq and NAPI work (/proc/sys/net/core/*)."""

from __future__ import annotations

from irqlab.errors import ParseError, SourceError
from irqlab.sources.fs import Roots, read_text

# Knobs doctor rules quote and recommend changing (Documentation/admin-guide/sysctl/net.rst).
KNOBS: tuple[str, ...] = (
    "net.core.netdev_budget",  # packets per net_rx_action pass (300)
    "net.core.netdev_budget_usecs",  # time per pass, Linux >= 4.12 (2000 us = 2 jiffies at 1000 Hz)
    "net.core.netdev_max_backlog",  # per-CPU backlog queue length (1000); drops beyond it
    "net.core.dev_weight",  # per-backlog NAPI weight (64)
    "net.core.rps_sock_flow_entries",
    "net.core.rmem_default",  # a socket's receive buffer unless it sets SO_RCVBUF (bytes)
    "net.core.rmem_max",  # the most SO_RCVBUF may ask for (bytes)
)


def parse_int_knob(text: str, path: str) -> int:
    """The single integer a sysctl file holds."""
    token = text.strip()
    try:
        return int(token)
    except ValueError:
        raise ParseError(path, 1, token, "sysctl value is not an integer") from None


def read_sysctls(roots: Roots) -> dict[str, int]:
    """Values of KNOBS that this kernel has and this user may read."""
    out: dict[str, int] = {}
    for name in KNOBS:
        path = roots.proc("sys", *name.split("."))
        try:
            out[name] = parse_int_knob(read_text(path), str(path))
        except SourceError:
            continue
    return out
