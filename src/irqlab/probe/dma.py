"""Hold /dev/cpu_dma_latency at 0 us while a measurement runs.

The PM QoS request lives as long as the file stays open and is dropped when it is closed,
by the kernel, even if irqlab is killed (kernel/power/qos.c, cpu_latency_qos_release(), v6.18),
so nothing is left changed on the machine.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from irqlab.errors import MissingSource, PermissionDenied

PATH = "/dev/cpu_dma_latency"


@contextmanager
def hold_zero(path: str = PATH) -> Iterator[None]:
    """Ask for 0 us exit latency from C-states until the block ends."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        raise MissingSource(path, "no such device (kernel without CPU latency QoS)") from None
    except PermissionError:
        raise PermissionDenied(path, "permission denied (holding it needs root)") from None
    try:
        # cpu_latency_qos_write() takes a binary s32 (or a hex string); the binary form is what
        # cyclictest writes.
        os.write(fd, struct.pack("i", 0))
        yield
    finally:
        os.close(fd)
