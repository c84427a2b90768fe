"""Interrupt coalescing (ethtool -C) through pyroute2.

pyroute2 0.9's Ethtool reads and writes coalescing with the SIOCETHTOOL ioctl
(ETHTOOL_GCOALESCE / ETHTOOL_SCOALESCE), which the kernel serves from the same driver
callbacks as ethtool netlink's COALESCE_GET/SET (net/ethtool/coalesce.c, v6.18). A device
without get_coalesce/set_coalesce (veth) answers EOPNOTSUPP: irqlab says so and skips it.
"""

from __future__ import annotations

import errno

from irqlab.errors import IrqlabError
from irqlab.mitigate.netns import run_in_netns
from irqlab.model.knob import KnobUnsupported, bounded_int

COALESCE_FIELDS: dict[str, tuple[int, int]] = {
    "rx_coalesce_usecs": (0, 100_000),
    "rx_max_coalesced_frames": (0, 65_535),
}


class CoalesceUnsupported(KnobUnsupported):
    """The device has no coalescing control (a skip for the watch core, not a failure)."""


def validate_coalesce(field: str, value: str) -> str:
    if field not in COALESCE_FIELDS:
        raise IrqlabError(f"{field}: not a coalescing field irqlab writes ({', '.join(COALESCE_FIELDS)})")
    lo, hi = COALESCE_FIELDS[field]
    return bounded_int(value, lo, hi, field)


def _ethtool(call):
    """Run call(Ethtool()) with pyroute2's NotSupportedError turned into EOPNOTSUPP."""
    from pyroute2.ethtool import Ethtool

    eth = Ethtool()
    try:
        return call(eth)
    except OSError:
        raise
    except Exception as exc:  # pyroute2.ethtool.ioctl.NotSupportedError is not an OSError
        if type(exc).__name__ == "NotSupportedError":
            raise OSError(errno.EOPNOTSUPP, "operation not supported by the driver") from None
        raise
    finally:
        eth.close()


def _get(dev: str, field: str) -> str:
    return str(_ethtool(lambda eth: eth.get_coalesce(dev)[field]))


def _set(dev: str, field: str, value: str) -> None:
    _ethtool(lambda eth: eth.set_coalesce(dev, {field: int(value)}))


def _unsupported(exc: OSError) -> bool:
    return exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL)


def read_coalesce(netns: str | None, dev: str, field: str) -> str:
    try:
        return run_in_netns(netns, _get, dev, field)
    except OSError as exc:
        if _unsupported(exc):
            raise CoalesceUnsupported(f"{dev}: the driver has no interrupt coalescing control; skipped") from None
        raise


def write_coalesce(netns: str | None, dev: str, field: str, value: str) -> None:
    value = validate_coalesce(field, value)
    try:
        run_in_netns(netns, _set, dev, field, value)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            raise CoalesceUnsupported(f"{dev}: the driver refuses {field}; skipped") from None
        raise
