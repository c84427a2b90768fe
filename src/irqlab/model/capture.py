"""A raw capture: the kernel's files byte for byte, and when their counters were read."""

from __future__ import annotations

from dataclasses import dataclass

# Written beside proc/ and sys/ in a capture directory; read back for the capture's time.
CAPTURE_META = "irqlab-capture.json"


@dataclass(frozen=True, slots=True)
class RawCapture:
    """Raw file contents by path relative to /, and when the counters were read."""

    files: dict[str, bytes]
    monotonic_ns: int
    wall_time: float
    skipped: tuple[str, ...]  # paths that could not be read (permission, vanished)
