"""One attribute file of a network device (/sys/class/net/DEV/ATTR), read or written in its namespace.

NAPI knobs (napi.py) and queue steering masks (queues.py) are both files of this kind. The
device may live in another network namespace: the file is reached from a child that enters
it (netns.py), which mounts that namespace's sysfs; `sysfs` (a test root) applies to
irqlab's own namespace only.
"""

from __future__ import annotations

import os
import re

from irqlab.errors import IrqlabError
from irqlab.mitigate.netns import run_in_netns

_DEV = re.compile(r"^[^/\s]{1,15}$")  # IFNAMSIZ-1, no slash (dev_valid_name())


def check_device(dev: str) -> None:
    """IrqlabError unless dev can be a network device's name (so it is one path component)."""
    if not _DEV.match(dev) or dev in (".", ".."):
        raise IrqlabError(f"network device {dev!r}: not a valid interface name")


def _path(dev: str, attr: str, sysfs: str) -> str:
    return f"{sysfs}/class/net/{dev}/{attr}"


def _read(dev: str, attr: str, sysfs: str) -> str:
    with open(_path(dev, attr, sysfs)) as f:
        return f.read().strip()


def _write(dev: str, attr: str, value: str, sysfs: str) -> None:
    fd = os.open(_path(dev, attr, sysfs), os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)  # O_TRUNC: as `echo >`
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_attr(netns: str | None, dev: str, attr: str, sysfs: str = "/sys") -> str:
    """The attribute's text, stripped; OSError (with its errno) when the file cannot be read."""
    return run_in_netns(netns, _read, dev, attr, sysfs if netns is None else "/sys")


def write_attr(netns: str | None, dev: str, attr: str, value: str, sysfs: str = "/sys") -> None:
    """Write an already validated value, byte for byte (a caller adds the newline a file wants)."""
    run_in_netns(netns, _write, dev, attr, value, sysfs if netns is None else "/sys")
