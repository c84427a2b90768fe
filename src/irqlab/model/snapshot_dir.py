"""A raw capture: the kernel's files byte for byte, and when their counters were read."""

from __future__ import annotations

from dataclasses import dataclass, field

# Written beside proc/ and sys/ in a capture directory; read back for the capture's time.
CAPTURE_META = "irqlab-capture.json"


@dataclass(frozen=True, slots=True)
class RawCapture:
    """Raw file contents by path relative to /, and when the counters were read."""

    files: dict[str, bytes]
    monotonic_ns: int
    wall_time: float
    skipped: tuple[str, ...]  # paths that could not be read (permission, vanished)
    # Symbolic links kept as the kernel shows them, by path: their text, never followed
    # ("socket:[4026]" for a process's fd, a device's driver link).
    links: dict[str, str] = field(default_factory=dict)
    # Monotonic ns at which other parts were read, by name ("threads"): written to the meta file.
    stamps: dict[str, int] = field(default_factory=dict)
